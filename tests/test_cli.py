"""The command line contract (docs/method.md): exit codes, one-line errors, the report folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import upsampcheck.outputs.folder
from upsampcheck.cli import main

FAILING = ["layer", "--type", "transposed", "--length", "5", "--stride", "4"]
PASSING = [
    "layer",
    "--type",
    "transposed",
    "--length",
    "8",
    "--stride",
    "4",
    "--init",
    "ones",
    "--no-bias",
]


@pytest.mark.parametrize(
    "args", [["--help"], ["layer", "--help"], ["model", "--help"], ["trend", "--help"]]
)
def test_help_shows_examples_without_importing_torch_or_matplotlib(args):
    code = (
        f"import sys; from upsampcheck.cli import main; rc = main({args!r}); "
        "heavy = [m for m in ('torch', 'matplotlib', 'numpy') if m in sys.modules]; "
        f"print('HEAVY', heavy); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "HEAVY []" in proc.stdout
    assert "upsampcheck" in proc.stdout
    if args[0] == "layer":
        assert "Examples" in proc.stdout and "--init ones" in proc.stdout
    if args[0] == "model":
        assert "Examples" in proc.stdout and "--trust-checkpoint" in proc.stdout
    if args[0] == "trend":
        assert "Examples" in proc.stdout and "Slurm" in proc.stdout


def test_failing_layer_exits_1_and_writes_the_whole_report(cli, tmp_path):
    result = cli(*FAILING, out=tmp_path / "r")
    assert result.code == 1
    folder = tmp_path / "r"
    names = sorted(p.name for p in folder.iterdir())
    probes = ("dc", "noise", "silence", "sweep", "tone")
    assert names == sorted(
        [".upsampcheck", "audio", "report.html", "report.json", "summary.png", "verdict.txt"]
        + [f"transposed_{p}.png" for p in probes]
    )
    report = json.loads((folder / "report.json").read_text())
    assert set(report) >= {
        "schema_version",
        "tool",
        "environment",
        "subject",
        "sample_rate_hz",
        "probe_samples",
        "thresholds",
        "stages",
        "findings",
        "verdict",
        "exit_code",
    }
    assert report["schema_version"] == 2 and report["subject"]["kind"] == "layer"
    assert report["verdict"] == "fail" and report["exit_code"] == 1
    stage = report["stages"][0]
    assert (stage["factor"], stage["fs_in_hz"], stage["fs_out_hz"]) == (4, 4000.0, 16000.0)
    assert set(stage["filtering"]["response_db"]) == {"0.25", "0.5", "0.75", "0.9"}
    assert [round(line["freq_hz"]) for line in stage["tonal"]["lines"]] == [4000, 8000]
    assert "verdict: FAIL" in (folder / "verdict.txt").read_text()
    assert "verdict: FAIL" in result.out
    assert all(
        (folder / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names if n[-3:] == "png"
    )


def test_passing_layer_exits_0(cli):
    result = cli(*PASSING, "--no-plots")
    assert result.code == 0 and "verdict: PASS" in result.out


def test_format_json_prints_the_report_on_stdout(cli, tmp_path):
    result = cli(*FAILING, "--format", "json", "--no-plots", out=tmp_path / "r")
    printed = result.json()
    assert printed == json.loads((tmp_path / "r" / "report.json").read_text())
    assert printed["exit_code"] == result.code == 1


def test_exit_zero_keeps_the_verdict_but_exits_0(cli):
    result = cli(*FAILING, "--no-plots", "--exit-zero")
    assert result.code == 0 and "verdict: FAIL" in result.out


def test_rerun_replaces_an_earlier_report(cli, tmp_path):
    cli(*FAILING, "--no-plots", out=tmp_path / "r")
    assert cli(*PASSING, "--no-plots", out=tmp_path / "r").code == 0
    assert json.loads((tmp_path / "r" / "report.json").read_text())["verdict"] == "pass"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


BAD_INPUTS = {
    "stride 1": ["layer", "--stride", "1"],
    "stride 0": ["layer", "--stride", "0"],
    "negative length": ["layer", "--length", "-1"],
    "zero channels": ["layer", "--channels", "0"],
    "unknown type": ["layer", "--type", "bilinear"],
    "icnr on transposed": ["layer", "--type", "transposed", "--init", "icnr"],
    "length 0 on transposed": ["layer", "--type", "transposed", "--length", "0"],
    "nan sample rate": ["layer", "--sample-rate", "nan"],
    "infinite sample rate": ["layer", "--sample-rate", "inf"],
    "negative sample rate": ["layer", "--sample-rate", "-16000"],
    "non-positive probe samples": ["layer", "--probe-samples", "0"],
    "unknown option": ["layer", "--strides", "4"],
    "non-integer stride": ["layer", "--stride", "2.5"],
    "unknown device": ["layer", "--device", "tpu"],
    "unknown fail-on": ["layer", "--fail-on", "loudness"],
}


@pytest.mark.parametrize("args", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_exits_2_with_one_line_and_no_report(cli, tmp_path, args):
    result = cli(*args, out=tmp_path / "r")
    assert result.code == 2
    assert result.err.count("\n") == 1 and result.err.startswith("upsampcheck: error: ")
    assert "Traceback" not in result.err
    assert list(tmp_path.iterdir()) == []


def test_cuda_without_a_gpu_is_bad_input(cli, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = cli("layer", "--device", "cuda", out=tmp_path / "r")
    assert result.code == 2 and "no CUDA device" in result.err
    assert not (tmp_path / "r").exists()


def test_out_that_is_a_file_or_a_foreign_folder_is_refused(cli, tmp_path):
    (tmp_path / "file").write_text("x")
    assert cli(*PASSING, out=tmp_path / "file").code == 2
    foreign = tmp_path / "data"
    foreign.mkdir()
    (foreign / "keep.wav").write_text("x")
    assert cli(*PASSING, out=foreign).code == 2
    assert (foreign / "keep.wav").exists()


def test_internal_error_exits_3_and_leaves_no_half_written_report(cli, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(upsampcheck.outputs.folder.FigureRenderer, "finish", broken)
    result = cli(*FAILING, out=tmp_path / "r")
    assert result.code == 3
    assert "internal error" in result.err and result.err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_debug_env_shows_the_traceback_and_still_exits_3(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("UPSAMPCHECK_DEBUG", "1")
    monkeypatch.setattr(upsampcheck.outputs.folder, "render_text", lambda r: 1 / 0)
    assert main([*PASSING, "--out", str(tmp_path / "r")]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError: division by zero" in err
    assert list(tmp_path.iterdir()) == []


def test_console_script_runs_as_a_real_process(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "upsampcheck", *FAILING, "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stderr
    assert len(list(Path(tmp_path / "r").glob("*.png"))) == 6
    bad = subprocess.run(
        [sys.executable, "-m", "upsampcheck", "layer", "--stride", "1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stdout == ""
    assert list(Path(tmp_path).iterdir()) == [tmp_path / "r"]


def test_the_python_api_is_importable_from_the_package_and_lazy():
    code = (
        "import sys, upsampcheck; assert 'torch' not in sys.modules; "
        "from upsampcheck import check_layer, LayerSpec; import upsampcheck.api as api; "
        "assert upsampcheck.API == set(api.__all__); "
        "print(check_layer(LayerSpec('nearest', 2, 0)).verdict)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "pass"


def help_text(*args: str) -> str:
    env = {**__import__("os").environ, "COLUMNS": "250", "TERM": "dumb", "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "upsampcheck", *args, "--help"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def option_rows(text: str) -> dict[str, str]:
    """``{--flag: the rest of its row}`` from rich's option panels (wrapped rows joined)."""
    rows: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        cells = line.strip("│ ").split()
        if cells and cells[0].startswith("--"):
            last = cells[0]
            rows[last] = line
        elif last and line.startswith("│") and cells:
            rows[last] += " " + line.strip("│ ")
    return rows


def test_layer_help_shows_every_default_and_the_thresholds_of_default_toml():
    import tomllib

    from upsampcheck.config import default_config_path

    rows = option_rows(help_text("layer"))
    flags_only = {"--help", "--list-configs", "--exit-zero", "--quiet", "--verbose"}
    assert set(rows) > flags_only | {"--type", "--tonal-fail-db", "--fail-on"}
    for flag, row in rows.items():
        if flag not in flags_only:
            assert "[default: " in row, row
        assert "<bool>" not in row or flag == "--help", row
    assert "Upsampler kind [default: transposed]." in rows["--type"]
    assert "Upsampling factor, >= 2 [default: 4]." in rows["--stride"]
    thresholds = tomllib.loads(default_config_path().read_text())["thresholds"]
    for key, value in thresholds.items():
        shown = ", ".join(value) or "none" if isinstance(value, list) else f"{value:g} dB"
        assert f"[default: {shown}]" in " ".join(rows[f"--{key}"].split()), key


def test_model_help_keeps_brackets_and_root_help_offers_completion():
    assert "A TOML file whose [thresholds] table overrides" in " ".join(
        option_rows(help_text("model"))["--config"].split()
    )
    assert "--install-completion" in help_text()


def test_enum_errors_are_one_plain_line(cli):
    result = cli("layer", "--type", "foo")
    assert result.code == 2
    assert result.err == (
        "upsampcheck: error: Invalid value for '--type' / '-t': 'foo' is not one of "
        "'transposed', 'subpixel', 'nearest', 'linear', 'stretch'.\n"
    )
