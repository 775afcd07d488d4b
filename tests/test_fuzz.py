"""Property-based fuzzing of the command line: layer flags, stack specs and argument lists,
valid and invalid. Whatever is drawn: never exit 3, never a traceback, an exit 2 says why in
one line and leaves no folder behind.

Profiles: ``ci`` (the default: derandomised, a bounded number of examples, so the suite stays
fast and repeatable) and ``long`` (``HYPOTHESIS_PROFILE=long``: thousands, random), for a
search before a release. The figures are off and probes short, so one example costs a
fraction of a second.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
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


def test_zz_outcome_summary(capsys):
    """Prints the exit codes the fuzzers saw (read it with ``pytest -s``)."""
    with capsys.disabled():
        print(f"\nfuzz outcomes by exit code: {dict(sorted(OUTCOMES.items()))}")
    assert 3 not in OUTCOMES
