"""Issue 18, rows 6, 7 and 10: what comes from elsewhere (a pyproject.toml above the working
folder, a stack spec, a ``--config`` file, a baseline, ``--arch-kwargs``, report.json files
given to ``trend``) never crashes the tool and never touches the user's files.

Each hostile input lives in a fake home folder (``user_home``) that is compared byte for byte
before and after the run (``snapshot``); a refusal is exit 2 with one line naming the file (or
the option) and the key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import snapshot

from upsampcheck.cli import main

FAST = ["layer", "--type", "nearest", "--stride", "2", "--probe-samples", "256", "--no-plots"]
BIG = "1" * 401
"""An integer of 401 digits: it parses, but ``float()`` of it overflows."""
HUGE = "7" * 5000
"""An integer beyond Python's 4,300-digit limit on ``int()``."""


def run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def assert_refused(code: int, err: str, *words: str) -> None:
    """Exit 2, one line on stderr, no traceback, each of ``words`` in it."""
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("upsampcheck: error:"), err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)


@pytest.fixture
def work(user_home, monkeypatch) -> Path:
    """The user's project folder (below the fake home), made the working directory."""
    folder = user_home / "work"
    monkeypatch.chdir(folder)
    return folder


# --- row 6: pyproject.toml above the working folder -----------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f"[tool.upsampcheck]\ntonal-fail-db = {BIG}\n", ["tool.upsampcheck.tonal-fail-db", "401"]),
        (f"[tool.upsampcheck]\ntonal-fail-db = {HUGE}\n", ["line 2", "tonal-fail-db", "4300"]),
        (f"[tool.upsampcheck]\ntonal-fail-db = -{BIG}\n", ["tonal-fail-db"]),
        (f"[tool.upsampcheck.audio]\nline-fail-db = {BIG}\n", ["tool.upsampcheck.audio"]),
        ("[tool.upsampcheck]\ntonal-fail-db = " + "[" * 100 + "]" * 100 + "\n",
         ["nested too deeply"]),
        ("[tool.upsampcheck]\nfail-on = " + "[" * 30000 + "]" * 30000 + "\n",
         ["nested too deeply"]),
        ("[tool.upsampcheck]\ntonal-fail-db = 1e300\n", ["tonal-fail-db", "-1000 to 1000"]),
        ('[tool.upsampcheck]\ntonal-fail-db = "loud"\n', ["tonal-fail-db"]),
        ("[tool]\nupsampcheck = 3\n", ["tool.upsampcheck must be a table"]),
        ("[tool.upsampcheck\ntonal-fail-db = 1\n", ["not valid TOML"]),
    ],
)  # fmt: skip
def test_a_hostile_upsampcheck_table_in_pyproject_is_exit_2_naming_file_and_key(
    user_home, work, tmp_path, capsys, text, words
):
    (user_home / "pyproject.toml").write_text(text)
    before = snapshot(user_home)
    code, err = run([*FAST, "--out", str(tmp_path / "out")], capsys)
    assert_refused(code, err, "pyproject.toml", *words)
    assert snapshot(user_home) == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "text",
    [
        'tool = "x"\n',
        "tool = [1, 2]\n",
        f"[tool.other]\nx = {HUGE}\n",
        f"[tool.other]\nx = {BIG}\n",
        "[tool.other]\nx = " + "[" * 30000 + "]" * 30000 + "\n",
        "[project\nname = 'broken'\n",
        "\xff\xfe not text",
        '[project]\ndependencies = ["upsampcheck"]\n',
    ],
)
def test_a_pyproject_without_an_upsampcheck_table_is_passed_over(
    user_home, work, tmp_path, capsys, text
):
    """Someone else's pyproject.toml (not a table ``tool``, another tool's huge integer or
    deep list, not valid TOML at all) never stops a run: every command below it works."""
    (user_home / "pyproject.toml").write_bytes(text.encode("utf-8", "surrogateescape"))
    before = snapshot(user_home)
    code, err = run([*FAST, "--out", str(tmp_path / "out"), "--format", "json"], capsys)
    assert code in (0, 1), err
    assert snapshot(user_home) == before


def test_the_nearest_pyproject_with_the_table_is_used_past_one_without_it(
    user_home, work, tmp_path, capsys
):
    (user_home / "pyproject.toml").write_text("[tool.upsampcheck]\ntonal-fail-db = -7.0\n")
    (work / "pyproject.toml").write_text('tool = "x"\n')
    code = main([*FAST, "--out", str(tmp_path / "out"), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    entry = report["thresholds"]["tonal-fail-db"]
    assert entry["value"] == -7.0 and entry["source"] == str(user_home / "pyproject.toml")


# --- row 6: stack specs and --config files ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f'sample_rate = 16000\nseed = {BIG}\n[[layer]]\ntype = "nearest"\nstride = 2\n',
         ["key seed", "401 digits"]),
        (f'sample_rate = {BIG}\n[[layer]]\ntype = "nearest"\nstride = 2\n',
         ["key sample_rate"]),
        (f'sample_rate = 16000\n[[layer]]\ntype = "nearest"\nstride = {HUGE}\n',
         ["line 4", "key stride", "4300"]),
        (f'sample_rate = 16000\n[[layer]]\ntype = "nearest"\nstride = {BIG}\n',
         ["key layer[0].stride"]),
        (f'sample_rate = 16000\n[thresholds]\ntonal-fail-db = {BIG}\n[[layer]]\ntype = "nearest"\n'
         "stride = 2\n", ["key thresholds.tonal-fail-db"]),
        ('sample_rate = 16000\nprobes = ' + "[" * 100 + "]" * 100 +
         '\n[[layer]]\ntype = "nearest"\nstride = 2\n', ["nested too deeply"]),
        ('sample_rate = 16000\nprobes = ' + "[" * 30000 + "]" * 30000 +
         '\n[[layer]]\ntype = "nearest"\nstride = 2\n', ["nested too deeply"]),
        ('sample_rate = 16000\n[[layer]]\ntype = "leaky_relu"\nslope = 1e400\n'
         '[[layer]]\ntype = "nearest"\nstride = 2\n', ["slope"]),
    ],
)  # fmt: skip
def test_a_stack_spec_with_huge_or_deep_values_is_exit_2_naming_file_and_key(
    user_home, work, tmp_path, capsys, text, words
):
    (work / "spec.toml").write_text(text)
    before = snapshot(user_home)
    code, err = run(["layer", "--config", "spec.toml", "--out", str(tmp_path / "out")], capsys)
    assert_refused(code, err, "spec.toml", *words)
    assert snapshot(user_home) == before


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f"[thresholds]\ntonal-warn-db = {BIG}\n", ["key thresholds.tonal-warn-db"]),
        (f"[thresholds]\ntonal-warn-db = {HUGE}\n", ["key tonal-warn-db", "4300"]),
        ("[thresholds]\nfail-on = " + "[" * 30000 + "]" * 30000 + "\n", ["nested too deeply"]),
        (f"[audio]\nclip-seconds = {BIG}\n", ["key audio.clip-seconds"]),
    ],
)
def test_a_threshold_config_with_huge_or_deep_values_is_exit_2_naming_file_and_key(
    user_home, work, tmp_path, capsys, text, words
):
    (work / "cfg.toml").write_text(text)
    before = snapshot(user_home)
    argv = ["model", "--arch", "model_fixtures:OnesTransposed", "--config", "cfg.toml"]
    code, err = run([*argv, "--out", str(tmp_path / "out")], capsys)
    assert_refused(code, err, "cfg.toml", *words)
    assert snapshot(user_home) == before


# --- row 6: baselines and --arch-kwargs ------------------------------------------------------

BASELINE = '{"format": "upsampcheck-baseline", "schema_version": 1, "stages": {"s": %s}}'
STAGE = '{"lines": [], "response_db": {}, "dc_db": %s}'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (BASELINE % (STAGE % BIG), ["key stages.s.dc_db", "401 digits"]),
        (BASELINE % (STAGE % HUGE), ["key stages.s.dc_db", "5000 digits"]),
        (BASELINE % (STAGE % "NaN"), ["dc_db is not a finite number"]),
        (BASELINE % (STAGE % "-Infinity"), ["dc_db is not a finite number"]),
        (BASELINE % '{"lines": [], "response_db": {"abc": 1}}', ["response_db key"]),
        (BASELINE % '{"lines": [{"freq_hz": 1e999, "level_db": 0}], "response_db": {}}',
         ["lines[0]"]),
        (BASELINE.replace('"schema_version": 1', f'"schema_version": {BIG}') % "{}",
         ["key schema_version"]),
        ('{"format": "upsampcheck-baseline", "schema_version": 1, "subject": [1], "stages": {}}',
         ["key subject"]),
        ("[" * 100000 + "]" * 100000, ["nested too deeply"]),
        ('{"a": ' + '{"b": ' * 30000 + "1" + "}" * 30001, ["nested too deeply"]),
    ],
)  # fmt: skip
def test_a_hostile_baseline_is_exit_2_naming_file_and_key(
    user_home, work, tmp_path, capsys, text, words
):
    (work / "base.json").write_text(text)
    before = snapshot(user_home)
    argv = [*FAST, "--baseline", "base.json", "--out", str(tmp_path / "out")]
    code, err = run(argv, capsys)
    assert_refused(code, err, "base.json", *words)
    assert snapshot(user_home) == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f'{{"channels": {BIG}}}', ["key channels", "401 digits"]),
        (f'{{"channels": {HUGE}}}', ["key channels", "5000 digits"]),
        (f'{{"a": [1, {{"b": -{BIG}}}]}}', ["key a[1].b"]),
        ('{"a": ' + "[" * 30000 + "]" * 30000 + "}", ["nested too deeply"]),
        ('{"a": ' + "[" * 65 + "]" * 65 + "}", ["nested too deeply"]),
        ("[" * 30000 + "]" * 30000, ["nested too deeply"]),
        ('{"a": 1', ["not valid JSON"]),
        ("[1]", ["must be a JSON object"]),
    ],
)
def test_hostile_arch_kwargs_are_exit_2_naming_the_key(
    user_home, work, tmp_path, capsys, text, words
):
    before = snapshot(user_home)
    argv = ["model", "--arch", "model_fixtures:OnesTransposed", "--arch-kwargs", text]
    code, err = run([*argv, "--out", str(tmp_path / "out")], capsys)
    assert_refused(code, err, "--arch-kwargs", *words)
    assert snapshot(user_home) == before


def test_arch_kwargs_nested_within_the_bound_still_reach_the_architecture(capsys, tmp_path):
    """64 levels are allowed: the refusal is about the bound, not about nesting as such."""
    text = '{"unexpected": ' + "[" * 63 + "]" * 63 + "}"
    argv = ["model", "--arch", "model_fixtures:OnesTransposed", "--arch-kwargs", text]
    code, err = run([*argv, "--out", str(tmp_path / "out")], capsys)
    assert_refused(code, err, "unexpected")
