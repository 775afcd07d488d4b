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
from conftest import says_fail, snapshot

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
        ('sample_rate = 16000\n[[layer]]\ntype = "nearest"\nstride = 0x' + "f" * 5000 + "\n",
         ["key layer[0].stride", "more than 4300 digits"]),
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


# --- row 7: trend over hand-edited report.json files ----------------------------------------


@pytest.fixture(scope="module")
def real_report(tmp_path_factory) -> str:
    """The text of a real, failing report.json (the brief's partial-overlap layer)."""
    out = tmp_path_factory.mktemp("real") / "r"
    argv = ["layer", "--type", "transposed", "--length", "5", "--stride", "4", "--no-plots"]
    assert main([*argv, "--out", str(out), "--format", "json"]) == 1
    return (out / "report.json").read_text()


def put_report(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(text)
    return folder


def edited(text: str, change) -> str:
    doc = json.loads(text)
    change(doc)
    return json.dumps(doc)


def trend(args: list[str], out: Path, capsys) -> tuple[int, str]:
    return run(["trend", *args, "--out", str(out), "--no-plots", "--format", "json"], capsys)


def test_a_real_report_is_trusted_by_trend(user_home, real_report, tmp_path, capsys):
    put_report(user_home / "r1", real_report)
    code, err = trend([str(user_home / "r1")], tmp_path / "t", capsys)
    assert code == 1, err


def test_names_that_read_as_terminal_markup_are_shown_as_written(
    user_home, real_report, tmp_path, capsys
):
    def rename(doc):
        doc["subject"]["name"] = "model[v2][/x]"
        doc["stages"][0]["name"] = "up[/]"

    put_report(user_home / "r1", edited(real_report, rename))
    code = main(["trend", str(user_home / "r1"), "--out", str(tmp_path / "t"), "--no-plots"])
    out = capsys.readouterr().out
    assert code == 1 and "model[v2][/x]" in out and "up[/]" in out


def set_at(path: tuple, value):
    def change(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def drop(path: tuple):
    def change(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (set_at(("exit_code",), 256), ["field exit_code", "0, 1 or 2", "256"]),
        (set_at(("exit_code",), 0), ["field exit_code", "verdict"]),
        (set_at(("exit_code",), 2**63), ["field exit_code"]),
        (set_at(("exit_code",), True), ["field exit_code"]),
        (set_at(("exit_code",), "1"), ["field exit_code"]),
        (set_at(("verdict",), "pass"), ["field exit_code is 1", "verdict is 'pass'"]),
        (set_at(("verdict",), "PASS"), ["field verdict"]),
        (lambda d: d.update(verdict="pass", exit_code=0), ["field verdict", "a finding fails"]),
        (set_at(("findings",), []), ["field verdict", "no finding fails"]),
        (set_at(("findings", 0, "severity"), 3), ["field findings[0].severity"]),
        (set_at(("findings", 0), "fail"), ["field findings[0]"]),
        (set_at(("stages",), {}), ["field stages"]),
        (set_at(("stages", 0), []), ["field stages[0]"]),
        (set_at(("stages", 0, "name"), 7), ["field stages[0].name"]),
        (set_at(("stages", 0, "name"), "\x1b[2J"), ["field stages[0].name", "printable"]),
        (set_at(("stages", 0, "tonal"), None), ["field stages[0].tonal"]),
        (set_at(("stages", 0, "tonal", "max_level_db"), float("nan")), ["max_level_db"]),
        (set_at(("stages", 0, "tonal", "max_level_db"), 1e300), ["max_level_db"]),
        (set_at(("stages", 0, "tonal", "lines", 0, "level_db"), "-3"),
         ["field stages[0].tonal.lines[0].level_db"]),
        (set_at(("stages", 0, "tonal", "lines", 0, "freq_hz"), -1.0), ["lines[0].freq_hz"]),
        (set_at(("stages", 0, "tonal", "lines"), {"a": 1}), ["lines"]),
        (set_at(("output",), "x"), ["field output"]),
        (set_at(("output",), {"lines": [{"freq_hz": 1.0}]}), ["output.lines[0].level_db"]),
        (set_at(("thresholds", "tonal-fail-db"), 5), ["field thresholds.tonal-fail-db"]),
        (set_at(("thresholds", "tonal-fail-db", "value"), float("inf")), ["tonal-fail-db.value"]),
        (set_at(("subject",), []), ["field subject"]),
        (set_at(("subject", "step"), 2**63), ["field subject.step"]),
        (set_at(("subject", "step"), -1), ["field subject.step"]),
        (set_at(("subject", "name"), ["a"]), ["field subject.name"]),
        (set_at(("schema_version",), 99), ["field schema_version"]),
        (drop(("verdict",)), ["incomplete report"]),
        (drop(("stages", 0, "tonal")), ["field stages[0].tonal", "missing"]),
        (set_at(("tool",), "upsampcheck"), ["not an upsampcheck report"]),
    ],
)  # fmt: skip
def test_a_hand_edited_report_is_refused_by_trend_naming_file_and_field(
    user_home, real_report, tmp_path, capsys, change, words
):
    put_report(user_home / "r1", real_report)
    put_report(user_home / "r2", edited(real_report, change))
    before = snapshot(user_home)
    code, err = trend([str(user_home / "r1"), str(user_home / "r2")], tmp_path / "t", capsys)
    assert_refused(code, err, "r2/report.json", *words)
    assert snapshot(user_home) == before
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (('"exit_code": 1', '"exit_code": ' + str(2**63)), ["field exit_code"]),
        (('"exit_code": 1', '"exit_code": ' + HUGE), ["key exit_code", "5000 digits"]),
        (('"exit_code": 1', '"exit_code": ' + BIG), ["key exit_code", "401 digits"]),
        (('"exit_code": 1', '"exit_code": NaN'), ["field exit_code"]),
        (('"exit_code": 1', '"exit_code": ' + "[" * 30000 + "]" * 30000), ["nested too deeply"]),
        (('"subject": {', '"subject": {"step": ' + BIG + ", "), ["key subject.step"]),
        (('"level_db": ', '"level_db": ' + BIG + "0 + "), ["not valid JSON"]),
    ],
)
def test_a_report_with_huge_or_deep_raw_values_is_refused_by_trend(
    user_home, real_report, tmp_path, capsys, raw, words
):
    old, new = raw
    text = real_report.replace(old, new, 1)
    assert text != real_report
    put_report(user_home / "r1", text)
    before = snapshot(user_home)
    code, err = trend([str(user_home / "r1")], tmp_path / "t", capsys)
    assert_refused(code, err, "r1/report.json", *words)
    assert snapshot(user_home) == before


RAW = "@@raw:{}@@"
"""A placeholder that :func:`mutations` replaces by raw JSON text after ``json.dumps``."""
VALUES = [
    None, "x", "", True, False, -1, 0, 2, 256, -(2**63), 2**63, 2**64, 1e308, -0.0,
    [], {}, [1], {"a": None}, "fail", "pass",
    RAW.format("NaN"), RAW.format("Infinity"), RAW.format("-Infinity"),
    RAW.format(BIG), RAW.format("-" + HUGE), RAW.format("[" * 3000 + "]" * 3000),
]  # fmt: skip
"""What a mutated field becomes (besides being deleted)."""


LINE = ("stages", 0, "tonal", "lines", 0)
READ = [
    ("exit_code",), ("verdict",), ("schema_version",), ("tool",), ("tool", "name"),
    ("findings",), ("findings", 0), ("findings", 0, "severity"), ("stages",), ("stages", 0),
    ("stages", 0, "name"), ("stages", 0, "tonal"), ("stages", 0, "tonal", "max_level_db"),
    ("stages", 0, "tonal", "lines"), LINE, (*LINE, "freq_hz"), (*LINE, "level_db"),
    ("output",), ("thresholds",), ("thresholds", "tonal-fail-db"),
    ("thresholds", "tonal-fail-db", "value"), ("subject",), ("subject", "name"),
    ("subject", "step"), ("subject", "checkpoint"),
]  # fmt: skip
"""The fields ``trend`` reads (some absent from a layer's report: set, they are added)."""


def key_paths(doc, path=()) -> list[tuple]:
    """Every key path of ``doc``, containers included; lists past their first entry and the
    long curves left out (their entries are alike)."""
    found = [path] if path else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key not in ("curve", "polyphase_sums"):
                found += key_paths(value, (*path, key))
    elif isinstance(doc, list):
        found += key_paths(doc[0], (*path, 0)) if doc else []
    return found


def mutations(text: str) -> list[tuple[str, str]]:
    """Deterministic edits of a report, as ``(label, text)`` pairs: each field ``trend``
    reads (:data:`READ`) deleted or replaced by each of :data:`VALUES`; every other field
    deleted or replaced by a string; the text cut short in 20 places."""
    edits = [(path, value) for path in READ for value in ["<deleted>", *VALUES]]
    edits += [
        (path, value)
        for path in key_paths(json.loads(text))
        if path not in READ
        for value in ("<deleted>", "x")
    ]
    out = []
    for path, value in edits:
        mutated = json.loads(text)
        target = mutated
        for key in path[:-1]:
            target = target[key]
        if value != "<deleted>":
            target[path[-1]] = value
        elif path[-1] in target:
            del target[path[-1]]
        dumped = json.dumps(mutated)
        if isinstance(value, str) and value.startswith("@@raw:"):
            dumped = dumped.replace(json.dumps(value), value[6:-2])
        out.append((f"{path} = {str(value)[:20]}", dumped))
    for cut in range(0, len(text), max(1, len(text) // 20)):
        out.append((f"cut at {cut}", text[:cut]))
    return out


def test_trend_over_hundreds_of_mutated_reports_never_crashes_nor_passes_a_failing_one(
    user_home, real_report, tmp_path, capsys
):
    """Every mutation of a real failing report: never exit 3 (nor a traceback), exit 2 in one
    line naming the file, and never exit 0 for a report that says it fails. The counts are
    printed (``pytest -s``)."""
    cases = mutations(real_report)
    assert len(cases) >= 400
    folder = user_home / "r"
    outcomes: dict[int, int] = {}
    for label, text in cases:
        put_report(folder, text)
        code, err = trend([str(folder)], tmp_path / "t", capsys)
        outcomes[code] = outcomes.get(code, 0) + 1
        assert code in (1, 2), (label, code, err)
        assert "Traceback" not in err, label
        if code == 2:
            assert err.count("\n") == 1 and "r/report.json" in err, (label, err)
        if says_fail(text):
            assert code != 0, label
    with capsys.disabled():
        print(f"\n{len(cases)} mutated reports, trend exit codes: {dict(sorted(outcomes.items()))}")


# --- row 10: trend --out may never be one of its inputs ---------------------------------------


@pytest.mark.parametrize(
    ("given", "out", "how"),
    [
        (["r1", "r2"], "r1", "is the input"),
        (["r1", "r2"], "r2", "is the input"),
        (["r1/report.json", "r2"], "r1", "holds the input r1/report.json"),
        (["r1", "r2"], "r1/trend", "is inside the input"),
        (["r1", "r2"], ".", "holds the input"),
        (["r1", "r2"], "..", "holds the input"),
        (["."], "trend", "is inside the input"),
        (["r1", "r2"], "link", "is the input"),
        (["link", "r2"], "r1", "is the input"),
    ],
)
def test_trend_out_that_is_an_input_or_above_or_inside_one_is_refused_before_any_work(
    user_home, real_report, capsys, monkeypatch, given, out, how
):
    runs = user_home / "work" / "runs"
    put_report(runs / "r1", real_report)
    put_report(runs / "r2", real_report.replace('"name": "transposed"', '"name": "other"', 1))
    if "link" in (*given, out):
        (runs / "link").symlink_to("r1")
    monkeypatch.chdir(runs)
    before = snapshot(user_home)
    code, err = run(["trend", *given, "--out", out, "--no-plots"], capsys)
    assert_refused(code, err, f"--out {out} {how}")
    assert snapshot(user_home) == before


def test_trend_out_beside_its_inputs_is_written(user_home, real_report, capsys, monkeypatch):
    runs = user_home / "work" / "runs"
    put_report(runs / "r1", real_report)
    monkeypatch.chdir(runs)
    code, err = run(["trend", "r1", "--out", "trend", "--no-plots"], capsys)
    assert code == 1, err
    assert (runs / "trend" / "trend.json").is_file()
    assert (runs / "r1" / "report.json").read_text() == real_report


def test_trend_names_an_audio_report_instead_of_calling_it_incomplete(user_home, tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    wav = tmp_path / "gen.wav"
    sf.write(wav, 0.1 * np.random.default_rng(0).standard_normal(22050), 22050)
    assert main(["audio", str(wav), "--out", str(tmp_path / "a"), "--no-plots"]) in (0, 1)
    capsys.readouterr()
    code = main(["trend", str(tmp_path / "a"), "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert code == 2 and "an audio report" in err and "incomplete" not in err


def test_trend_says_when_its_reports_are_of_different_subjects(user_home, tmp_path, capsys):
    layer = ["layer", "--type", "transposed", "--length", "5", "--stride", "4", "--no-plots"]
    assert main([*layer, "--out", str(tmp_path / "l")]) == 1
    model = ["model", "--arch", "model_fixtures:OnesTransposed", "--sample-rate", "16000"]
    assert main([*model, "--no-plots", "--out", str(tmp_path / "m")]) in (0, 1)
    capsys.readouterr()
    code = main(["trend", str(tmp_path / "l"), str(tmp_path / "m"), "--out", str(tmp_path / "t")])
    out = capsys.readouterr().out
    assert code == 1 and "different subjects" in " ".join(out.split())
    trend = json.loads((tmp_path / "t" / "trend.json").read_text())
    assert "layer" in trend["notes"][0] and "model" in trend["notes"][0]
