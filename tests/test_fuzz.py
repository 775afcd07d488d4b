"""Property-based fuzzing of the command line: layer flags, stack specs and argument lists,
valid and invalid; hostile documents (huge integers, deep nesting, junk at a drawn key) as stack
specs, ``--config`` files, pyproject.toml, baselines and ``--arch-kwargs``; hand-edited
report.json files given to ``trend``. Whatever is drawn: never exit 3, never a traceback, an
exit 2 says why in one line and leaves no folder behind; ``trend`` never exits 0 over a report
that says it fails, and never changes it.

Profiles: ``ci`` (the default: derandomised, 150 examples per test, so the suite stays fast and
repeatable) and ``long`` (``HYPOTHESIS_PROFILE=long``: 3,000 random examples per test, 15,000
over the five fuzz tests), for a search before a release. The figures are off and probes
short, so one example costs a fraction of a second.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import says_fail
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from upsampcheck.cli import main

settings.register_profile(
    "ci",
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

OUTCOMES: dict[int, int] = {}
"""Exit codes seen in this session, for the long profile's summary."""

SMALL_INTS = st.sampled_from(["-1", "0", "1", "2", "3", "4", "5", "7", "8", "16", "257", "4097"])
NUMBERS = st.one_of(
    SMALL_INTS,
    st.sampled_from(["nan", "inf", "-inf", "1e400", "5e-324", "0.5", "16000", "22050", "1e9"]),
    st.sampled_from(["x", "", "--", "4,", "١٢", "18446744073709551616", "-0"]),
)
TYPES = st.sampled_from(["transposed", "subpixel", "nearest", "linear", "stretch", "cubic", ""])
INITS = st.sampled_from(["default", "ones", "icnr", "zeros"])


@st.composite
def layer_args(draw) -> list[str]:
    """``upsampcheck layer`` flags, mostly well-formed, some values out of range or junk."""
    args = ["layer"]
    for flag, values in [
        ("--type", TYPES),
        ("--stride", SMALL_INTS),
        ("--length", SMALL_INTS),
        ("--channels", st.sampled_from(["-1", "0", "1", "2", "3", "1025", "x"])),
        ("--init", INITS),
        ("--sample-rate", NUMBERS),
        ("--seed", NUMBERS),
        ("--probe-samples", st.sampled_from(["-3", "0", "15", "16", "64", "300", "2000", "y"])),
        ("--tonal-fail-db", NUMBERS),
        ("--tolerance-db", NUMBERS),
        ("--format", st.sampled_from(["text", "json", "junit", "github", "xml"])),
    ]:
        if draw(st.booleans()):
            args += [flag, draw(values)]
    if draw(st.booleans()):
        args.append(draw(st.sampled_from(["--bias", "--no-bias"])))
    return args


def toml_value(draw) -> str:
    return draw(
        st.sampled_from(
            ["4", "0", "-2", "2.5", '"4"', "true", "1e400", "nan", "[1, 2]", "{a = 1}", "inf",
             "99999999999999999999", '"transposed"', '"nearest"'],
        )
    )  # fmt: skip


@st.composite
def stack_spec(draw) -> bytes:
    """A stack spec: top keys and ``[[layer]]`` tables with drawn keys and values, or junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=64))
    lines = []
    for key in draw(st.lists(st.sampled_from(["sample_rate", "seed", "channels", "name", "x"]))):
        lines.append(f"{key} = {toml_value(draw)}")
    for _ in range(draw(st.integers(0, 4))):
        lines.append("[[layer]]")
        kind = draw(st.sampled_from(["transposed", "nearest", "relu", "conv", "leaky_relu", "?"]))
        lines.append(f'type = "{kind}"')
        for key in draw(st.lists(st.sampled_from(["stride", "length", "bias", "init", "slope"]))):
            lines.append(f"{key} = {toml_value(draw)}")
    text = "\n".join(dict.fromkeys(lines))  # a key twice is a TOML error; keep some variety
    return text.encode()


TOKENS = st.sampled_from(
    ["layer", "model", "--help", "--version", "--type", "transposed", "--stride", "4", "-s",
     "--arch", "model_fixtures:OnesTransposed", "nope:Nope", "torch.nn:Identity", "math:pi",
     "--input-shape", "1,4000", "0,0", "x", "--sample-rate", "8000", "nan", "--out", "--format",
     "json", "--plots", "--list-configs", "--config", "fig8_transposed", "missing.toml",
     "--fail-on", "tonal", "--exit-zero", "--timeout", "-1", "--stage", "up", "--seed", "-5"]
)  # fmt: skip


def run(argv: list[str], workdir: Path, capsys) -> tuple[int, str, str]:
    """Run in ``workdir`` with figures off and short probes where the command takes them."""
    if argv[:1] == ["layer"] and "--probe-samples" not in argv:
        argv = [*argv, "--probe-samples", "256"]
    if argv[:1] in (["layer"], ["model"]):
        argv = [*argv, "--no-plots"]
    code = main(argv)
    captured = capsys.readouterr()
    OUTCOMES[code] = OUTCOMES.get(code, 0) + 1
    return code, captured.out, captured.err


def check_outcome(code: int, err: str, workdir: Path, before: set[str]) -> None:
    assert code != 3, err
    assert "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("upsampcheck: error:"), err
        assert {p.name for p in workdir.iterdir()} == before, "exit 2 left something behind"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def fresh(workdir: Path) -> set[str]:
    """Empty ``workdir`` of what the previous example wrote; what is left is the baseline."""
    for entry in workdir.iterdir():
        if entry.name != "spec.toml":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return {p.name for p in workdir.iterdir()}


@given(args=layer_args())
def test_fuzzed_layer_flags_never_crash(workdir, capsys, args):
    before = fresh(workdir)
    code, _, err = run([*args, "--out", "report"], workdir, capsys)
    check_outcome(code, err, workdir, before)
    if code in (0, 1):
        assert (workdir / "report" / "report.json").is_file()


@given(spec=stack_spec())
def test_fuzzed_stack_specs_never_crash(workdir, capsys, spec):
    (workdir / "spec.toml").write_bytes(spec)
    before = fresh(workdir)
    code, _, err = run(["layer", "--config", "spec.toml", "--out", "report"], workdir, capsys)
    check_outcome(code, err, workdir, before)


@given(tokens=st.lists(TOKENS, max_size=8))
def test_fuzzed_argument_lists_never_crash(workdir, capsys, tokens):
    before = fresh(workdir)
    code, _, err = run(tokens, workdir, capsys)
    check_outcome(code, err, workdir, before)


# --- hostile documents: hand-edited reports (trend), huge integers and deep nesting ---------

BIG_INTS = st.sampled_from(
    ["1" * 401, "-" + "9" * 401, "7" * 4301, "3" * 20000, str(2**63), str(2**64), str(2**64 - 1),
     str(-(2**64)), "18446744073709551616"]
)  # fmt: skip
"""Integers as written in a file: 401 digits (``float()`` overflows), past Python's 4,300-digit
limit on ``int()``, and around the 2**63 and 2**64 edges."""


def deep(draw, opening: str, closing: str) -> str:
    """``opening`` nested a drawn number of times (up to 40,000), closed or not."""
    depth = draw(st.sampled_from([1, 2, 63, 64, 65, 100, 1000, 30000, 40000]))
    return opening * depth + (closing * depth if draw(st.booleans()) else "")


@st.composite
def json_value_text(draw) -> str:
    """A JSON value as text: a huge integer, deep nesting, a non-finite number or plain
    JSON of any type."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(BIG_INTS)
    if kind == 1:
        opening = draw(st.sampled_from(["[", '{"a": ']))
        return deep(draw, opening, "]" if opening == "[" else "}")
    if kind == 2:
        return draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-0", "1e-400"]))
    plain = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                     max_size=3),
        max_leaves=6,
    )  # fmt: skip
    return json.dumps(draw(plain))


@st.composite
def toml_value_text(draw) -> str:
    """A TOML value as text: a huge integer, deep arrays or inline tables, or a plain one."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(BIG_INTS | st.sampled_from(["0x" + "f" * 300, "1_" * 2500 + "1"]))
    if kind == 1:
        opening = draw(st.sampled_from(["[", "{a = "]))
        return deep(draw, opening, "]" if opening == "[" else "}")
    return toml_value(draw)


@st.composite
def hostile_document(draw) -> tuple[str, str, list[str]]:
    """``(file name, text, argv)``: a stack spec, a ``--config`` file, a pyproject.toml, a
    baseline or an ``--arch-kwargs`` value, each with a huge integer, deep nesting or junk at a
    drawn key."""
    role = draw(st.sampled_from(["spec", "config", "pyproject", "baseline", "arch-kwargs"]))
    fast = ["layer", "--type", "nearest", "--stride", "2", "--out", "report"]
    if role == "spec":
        key = draw(st.sampled_from(["sample_rate", "seed", "channels", "stride", "length", "x"]))
        value = draw(toml_value_text())
        top = {"sample_rate": "16000"} | (
            {key: value} if key in ("sample_rate", "seed", "channels", "x") else {}
        )
        layer = {"type": '"nearest"', "stride": "2"} | (
            {key: value} if key in ("stride", "length") else {}
        )  # fmt: skip
        text = "".join(f"{k} = {v}\n" for k, v in top.items()) + "[[layer]]\n"
        text += "".join(f"{k} = {v}\n" for k, v in layer.items())
        return "spec.toml", text, ["layer", "--config", "spec.toml", "--out", "report"]
    if role in ("config", "pyproject"):
        table = draw(
            st.sampled_from(
                [
                    "[thresholds]",
                    "[audio]",
                    "[tool.upsampcheck]",
                    "[tool.upsampcheck.audio]",
                    "[tool.other]",
                    "",
                ]
            )
        )
        key = draw(st.sampled_from(["tonal-fail-db", "line-fail-db", "fail-on", "clip-seconds",
                                    "tool", "x"]))  # fmt: skip
        text = f"{table}\n{key} = {draw(toml_value_text())}\n"
        if role == "config":
            argv = ["model", "--arch", "nope:Nope", "--config", "cfg.toml", "--out", "report"]
            return "cfg.toml", text, argv
        return "pyproject.toml", text, fast
    if role == "baseline":
        value = draw(json_value_text())
        where = draw(st.sampled_from(["dc_db", "lines", "response_db", "stage", "version"]))
        stage = '{"lines": [], "response_db": {}, "dc_db": null}'
        if where == "stage":
            stage = value
        elif where == "lines":
            stage = f'{{"lines": [{{"freq_hz": {value}, "level_db": 0}}], "response_db": {{}}}}'
        elif where != "version":
            stage = stage.replace("null" if where == "dc_db" else "{}", value, 1)
        version = value if where == "version" else "1"
        text = f'{{"format": "upsampcheck-baseline", "schema_version": {version}, '
        text += f'"stages": {{"nearest": {stage}}}}}'
        return "base.json", text, [*fast, "--baseline", "base.json"]
    text = f'{{"{draw(st.sampled_from(["channels", "a", ""]))}": {draw(json_value_text())}}}'
    argv = ["model", "--arch", "nope:Nope", "--arch-kwargs", text, "--out", "report"]
    return "", "", argv


@given(document=hostile_document())
def test_fuzzed_hostile_documents_never_crash(workdir, capsys, document):
    name, text, argv = document
    fresh(workdir)
    if name:
        (workdir / name).write_text(text)
    before = {p.name for p in workdir.iterdir()}
    code, _, err = run(argv, workdir, capsys)
    check_outcome(code, err, workdir, before)
    (workdir / name).unlink(missing_ok=True) if name else None


@pytest.fixture(scope="module")
def template_reports(tmp_path_factory) -> list[str]:
    """Two real report.json texts: a failing layer (partial overlap) and a passing one."""
    texts = []
    for layer in (["transposed", "--length", "5", "--stride", "4"], ["nearest", "--stride", "2"]):
        out = tmp_path_factory.mktemp("template") / "r"
        argv = ["layer", "--type", *layer, "--no-plots", "--probe-samples", "256"]
        with contextlib.redirect_stdout(io.StringIO()):
            assert main([*argv, "--out", str(out), "--format", "json"]) in (0, 1)
        texts.append((out / "report.json").read_text())
    return texts


REPORT_FIELDS = st.sampled_from(
    [("exit_code",), ("verdict",), ("schema_version",), ("tool",), ("findings",),
     ("findings", 0), ("findings", 0, "severity"), ("stages",), ("stages", 0),
     ("stages", 0, "name"), ("stages", 0, "tonal"), ("stages", 0, "tonal", "max_level_db"),
     ("stages", 0, "tonal", "lines"), ("stages", 0, "tonal", "lines", 0, "level_db"),
     ("stages", 0, "tonal", "lines", 0, "freq_hz"), ("output",), ("thresholds",),
     ("thresholds", "tonal-fail-db"), ("thresholds", "tonal-fail-db", "value"), ("subject",),
     ("subject", "name"), ("subject", "step"), ("subject", "checkpoint"), ("notes",)]
)  # fmt: skip
"""The fields ``trend`` reads (and one it does not)."""


@st.composite
def hand_edited_report(draw, templates: list[str]) -> str:
    """A real report with one to three fields deleted or replaced by hostile JSON."""
    doc = json.loads(templates[draw(st.integers(0, len(templates) - 1))])
    raws = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(REPORT_FIELDS)
        target = doc
        try:
            for key in path[:-1]:
                target = target[key]
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(target, dict | list):
            continue
        if draw(st.booleans()) and isinstance(target, dict):
            target.pop(path[-1], None)
        elif isinstance(target, dict) or (isinstance(path[-1], int) and path[-1] < len(target)):
            raws.append(draw(json_value_text()))
            target[path[-1]] = f"@@raw{len(raws) - 1}@@"
    text = json.dumps(doc)
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@raw{i}@@"', raw, 1)
    return text


@given(data=st.data())
def test_fuzzed_hand_edited_reports_never_crash_trend_nor_pass_a_failing_one(
    workdir, capsys, template_reports, data
):
    text = data.draw(hand_edited_report(template_reports))
    fresh(workdir)
    (workdir / "r1").mkdir()
    (workdir / "r1" / "report.json").write_text(text)
    before = {p.name for p in workdir.iterdir()}
    code, _, err = run(["trend", "r1", "--out", "t", "--no-plots"], workdir, capsys)
    check_outcome(code, err, workdir, before)
    if says_fail(text):
        assert code != 0, text[:400]
    assert (workdir / "r1" / "report.json").read_text() == text


def test_zz_outcome_summary(capsys):
    """Prints the exit codes the fuzzers saw (read it with ``pytest -s``)."""
    with capsys.disabled():
        print(f"\nfuzz outcomes by exit code: {dict(sorted(OUTCOMES.items()))}")
    assert 3 not in OUTCOMES
