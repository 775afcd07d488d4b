"""The CI gate: threshold precedence, --fail-on / --exit-zero, JUnit and GitHub output,
baselines, many checkpoints, and the README's CI examples run as written."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
L5_ONES = [
    "layer",
    "--type",
    "transposed",
    "--length",
    "5",
    "--stride",
    "4",
    "--init",
    "ones",
    "--no-bias",
    "--no-plots",
]
NEAREST = ["layer", "--type", "nearest", "--stride", "2", "--length", "0", "--no-plots"]
LINEAR = ["layer", "--type", "linear", "--stride", "2", "--length", "0", "--no-plots"]


def thresholds_of(result) -> dict:
    return result.json()["thresholds"]


def test_each_threshold_source_overrides_the_next(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = [*L5_ONES, "--format", "json"]
    default = thresholds_of(cli(*base))["tonal-fail-db"]
    assert default == {"value": -40.0, "source": "default"}

    (tmp_path / "pyproject.toml").write_text("[tool.upsampcheck]\ntonal-fail-db = -5.0\n")
    result = cli(*base)
    assert thresholds_of(result)["tonal-fail-db"]["value"] == -5.0
    assert thresholds_of(result)["tonal-fail-db"]["source"].endswith("pyproject.toml")
    assert result.code == 0  # the -10 dB line no longer fails

    spec = tmp_path / "stack.toml"
    spec.write_text(
        'sample_rate = 16000\n[[layer]]\ntype = "transposed"\nstride = 4\nlength = 5\n'
        'bias = false\ninit = "ones"\n[thresholds]\ntonal-fail-db = -12.0\n'
    )
    result = cli("layer", "--config", str(spec), "--no-plots", "--format", "json")
    assert thresholds_of(result)["tonal-fail-db"] == {"value": -12.0, "source": str(spec)}
    assert result.code == 1  # -10 dB > -12 dB

    result = cli(
        "layer", "--config", str(spec), "--no-plots", "--format", "json", "--tonal-fail-db", "-3"
    )
    assert thresholds_of(result)["tonal-fail-db"] == {"value": -3.0, "source": "flag"}
    assert thresholds_of(result)["tonal-warn-db"]["source"] == "default"
    assert result.code == 0


def test_fail_on_turns_a_check_s_warnings_into_failures(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli(*LINEAR).code == 0  # filtering warns only
    assert cli(*LINEAR, "--fail-on", "filtering").code == 1
    (tmp_path / "pyproject.toml").write_text('[tool.upsampcheck]\nfail-on = ["filtering"]\n')
    result = cli(*LINEAR, "--format", "json")
    assert result.code == 1
    filtering = [f for f in result.json()["findings"] if f["check"] == "filtering"]
    assert [f["severity"] for f in filtering] == ["fail"]


def test_bad_threshold_sources_are_one_line_errors(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.upsampcheck]\ntonal-fail = "loud"\n')
    result = cli(*NEAREST)
    assert result.code == 2 and "unknown key 'tonal-fail'" in result.err
    assert result.err.count("\n") == 1


def test_exit_zero_passes_a_failing_run(cli):
    assert cli(*L5_ONES).code == 1
    assert cli(*L5_ONES, "--exit-zero").code == 0


def test_junit_has_a_testcase_per_stage_and_check(cli, tmp_path):
    result = cli("layer", "--config", "fig8_transposed", "--no-plots", "--format", "junit")
    root = ET.fromstring(result.out)
    cases = root.findall(".//testcase")
    stages = {case.get("classname") for case in cases}
    assert {"1:transposed", "2:transposed", "3:transposed", "output"} <= stages
    per_stage = [(c.get("classname"), c.get("name")) for c in cases]
    assert len(per_stage) == len(set(per_stage))
    for stage in ("1:transposed", "2:transposed", "3:transposed"):
        checks = {name for cls, name in per_stage if cls == stage}
        assert {"tonal", "filtering", "replicas", "offset"} <= checks
    failures = root.findall(".//failure")
    assert failures and int(root.get("failures")) == len(failures)
    assert result.code == 1


def test_github_format_prints_escaped_commands_and_a_step_summary(cli, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = cli(*L5_ONES[:-1], "--format", "github", out=tmp_path / "r")
    errors = [line for line in result.out.splitlines() if line.startswith("::error ")]
    assert errors and all("\n" not in e and "%0A" not in e.split("::")[1] for e in errors)
    assert re.search(r"title=[^:]*%3A", errors[0])  # "upsampcheck tonal: ..." -> %3A
    text = summary.read_text()
    assert "| stage | check | severity" in text and "summary.png" in text


def test_github_actions_environment_adds_annotations_to_the_table(cli, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    result = cli(*L5_ONES)
    assert "verdict: FAIL" in result.out and "::error " in result.out


def save_upsampler(folder: Path, name: str, eps: float) -> Path:
    """A state dict for ``ConvTranspose1d(1, 1, 8, 4)`` with weights ``1 + eps·[1, 0, ..., 0]``:
    polyphase sums ``[2 + eps, 2, 2, 2]``, so DC lines at 4 and 8 kHz scale with ``eps`` while
    the response and images hardly move."""
    (folder / "upsampler.py").write_text(
        "from torch import nn\n\n\ndef make():\n"
        "    return nn.ConvTranspose1d(1, 1, 8, 4, bias=False)\n"
    )
    weight = torch.ones(1, 1, 8)
    weight[..., 0] += eps
    path = folder / f"{name}.pt"
    torch.save({"weight": weight}, path)
    return path


def test_baseline_round_trip(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    def check(ckpt: Path, *args: str):
        return cli(
            "model",
            str(ckpt),
            "--arch",
            "upsampler:make",
            "--input-shape",
            "1,4096",
            "--no-plots",
            "--format",
            "json",
            *args,
        )

    baseline = tmp_path / "baseline.json"
    base = save_upsampler(tmp_path, "base", 0.1)
    first = check(base, "--write-baseline", str(baseline))
    assert first.code == 1  # the 4 kHz line of eps = 0.1 is above -40 dB
    assert json.loads(baseline.read_text())["format"] == "upsampcheck-baseline"
    unchanged = check(base, "--baseline", str(baseline))
    assert unchanged.code == 0 and unchanged.json()["verdict"] == "pass"
    quieter = check(save_upsampler(tmp_path, "quieter", 0.03), "--baseline", str(baseline))
    assert quieter.code == 0  # lines 10.5 dB quieter: no regression
    louder = check(save_upsampler(tmp_path, "louder", 0.3), "--baseline", str(baseline))
    assert louder.code == 1  # 9.5 dB louder than the baseline
    clean = tmp_path / "clean.json"
    assert check(save_upsampler(tmp_path, "clean", 0.0), "--write-baseline", str(clean)).code == 0
    regressed = check(base, "--baseline", str(clean))
    assert regressed.code == 1
    new = [f for f in regressed.json()["findings"] if f["severity"] == "fail"]
    assert {round(f["freq_hz"]) for f in new if f["check"] == "tonal"} >= {4000, 8000}


def test_a_corrupt_baseline_is_bad_input(cli, tmp_path):
    bad = tmp_path / "baseline.json"
    bad.write_text("{not json")
    result = cli(*L5_ONES, "--baseline", str(bad), out=tmp_path / "r")
    assert result.code == 2 and result.err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def save_checkpoints(folder: Path) -> None:
    """Three Lightning-style checkpoints of a tiny generator whose upsampler grows louder."""
    (folder / "tinygen.py").write_text(
        "from torch import nn\n\n\ndef Generator():\n"
        "    return nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), nn.ConvTranspose1d(4, 1, 8, 4))\n"
    )
    sys.path.insert(0, str(folder))
    try:
        from tinygen import Generator
    finally:
        sys.path.remove(str(folder))
    torch.manual_seed(0)
    model = Generator()
    for step in (300, 20, 1000):
        with torch.no_grad():
            model[1].weight.mul_(1.5)
        state = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
        torch.save({"state_dict": state, "global_step": step}, folder / f"g_{step:05d}.ckpt")


def test_many_checkpoints_give_a_report_each_and_a_trend_by_step(cli, tmp_path, monkeypatch):
    save_checkpoints(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = cli(
        "model",
        str(tmp_path / "g_*.ckpt"),
        "--arch",
        "tinygen:Generator",
        "--input-shape",
        "1,2048",
        out=tmp_path / "out",
    )
    assert result.code == 1
    out = tmp_path / "out"
    trend = json.loads((out / "trend.json").read_text())
    assert trend["ordered_by"] == "step"
    assert [row["step"] for row in trend["checkpoints"]] == [20, 300, 1000]
    assert (out / "trend.png").exists()
    for row in trend["checkpoints"]:
        assert (out / row["report"]).exists()
    # each checkpoint scaled the upsampler by 1.5 more than the one saved before it (step 300
    # first, then 20, then 1000): levels are relative to the signal, so the lines stay put
    # while the offset grows; every stage's loudest line is reported
    levels = [row["worst_line_db"] for row in trend["checkpoints"]]
    assert all(len(level) == 1 for level in levels)


def readme_block(language: str, after: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(after)
    match = re.search(rf"```{language}\n(.*?)```", text[start:], re.S)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


def test_readme_pytest_snippet_runs_as_a_test():
    namespace: dict = {}
    exec(compile(readme_block("python", "## Use in CI"), "README.md", "exec"), namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test()


def test_readme_github_actions_job_runs_as_written(tmp_path):
    workflow = readme_block("yaml", "## Use in CI")
    commands = [
        line.split("run:", 1)[1].strip()
        for line in workflow.splitlines()
        if line.strip().startswith("- run: upsampcheck")
    ]
    assert len(commands) == 2
    save_checkpoints(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "g_01000.ckpt").rename(tmp_path / "checkpoints" / "last.ckpt")
    (tmp_path / "mymodels.py").write_text((tmp_path / "tinygen.py").read_text())
    env = {
        **__import__("os").environ,
        "PYTHONPATH": str(tmp_path),
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    make_baseline = (
        commands[1].split("--baseline")[0].replace("--format junit", "")
        + "--write-baseline upsampcheck-baseline.json --exit-zero --no-plots"
    )
    steps = [commands[0], make_baseline, commands[1]]
    for command in steps:
        args = shlex.split(command.split(">")[0])
        stdout = subprocess.run(
            [sys.executable, "-m", "upsampcheck", *args[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert stdout.returncode == 0, (command, stdout.stderr, stdout.stdout[-2000:])
        if "--format junit" in command:
            ET.fromstring(stdout.stdout)  # what the job redirects to upsampcheck.xml parses
    assert "upsampcheck" in (tmp_path / "summary.md").read_text()
    for out in ("layer", "model"):  # each command keeps its own report
        assert (tmp_path / "upsampcheck-reports" / out / "report.json").exists()


def readme_jobs() -> list[tuple[str, dict]]:
    """Every job of every YAML block in the README, parsed."""
    import yaml

    text = (ROOT / "README.md").read_text()
    jobs = []
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        jobs += list(yaml.safe_load(block)["jobs"].items())
    return jobs


def test_every_readme_job_checks_upsampcheck_out_before_installing_it():
    jobs = readme_jobs()
    assert len(jobs) == 3
    for name, job in jobs:
        checked_out: set[str] = set()
        for step in job["steps"]:
            uses, run = step.get("uses", ""), step.get("run", "")
            if uses.startswith("actions/checkout@"):
                options = step.get("with") or {}
                if options.get("repository") == "upsampcheck/upsampcheck":
                    checked_out.add("./" + options["path"])
            if run.startswith("pip install") and "torch" not in run:
                target = run.split()[-1]
                assert target in checked_out, (name, run, "not installed from a checkout")
                assert "pip install upsampcheck" not in run  # not on PyPI
        if any(step.get("run", "").startswith("upsampcheck") for step in job["steps"]):
            assert checked_out, name


def test_readme_jobs_write_distinct_reports_and_upload_what_they_write():
    def plain(text: str) -> str:  # a matrix expression as one word
        return re.sub(r"\$\{\{[^}]*\}\}", "N", text)

    for name, job in readme_jobs():
        commands = [
            plain(s["run"]) for s in job["steps"] if s.get("run", "").startswith("upsampcheck")
        ]
        outs = [shlex.split(c)[shlex.split(c).index("--out") + 1] for c in commands]
        assert len(set(outs)) == len(outs), (name, outs)
        uploads = [
            plain(s["with"]["path"])
            for s in job["steps"]
            if s.get("uses", "").startswith("actions/upload-artifact@")
        ]
        written = outs + [c.split(">")[1].strip() for c in commands if ">" in c]
        for path in written:
            assert any(path == u or path.startswith(u.rstrip("/") + "/") for u in uploads), (
                name,
                path,
                uploads,
            )
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/upload-artifact@"):
                assert step["with"].get("include-hidden-files") is True  # the marker travels


def test_a_baseline_never_excuses_nan_output():
    from upsampcheck.report.baseline import apply_baseline, make_baseline

    report = {
        "schema_version": 1, "subject": {"kind": "model", "name": "m"}, "stages": [],
        "thresholds": {}, "notes": [], "verdict": "fail", "exit_code": 1,
        "findings": [{"check": "numerics", "severity": "fail", "stage": "output",
                      "freq_hz": None, "level_db": None, "message": "NaN", "cause": "", "fix": ""}],
    }  # fmt: skip
    gated = apply_baseline(report, make_baseline(report))
    assert gated["verdict"] == "fail" and gated["exit_code"] == 1


def test_audio_reports_give_github_commands_and_a_summary_with_a_file_column(
    cli, tmp_path, monkeypatch
):
    import numpy as np
    import soundfile as sf

    fs = 22050
    n = np.arange(4 * fs)
    rng = np.random.default_rng(0)
    wav = tmp_path / "gen.wav"
    sf.write(wav, 0.1 * rng.standard_normal(len(n)) + 0.05 * np.cos(np.pi * n / 2), fs)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = cli("audio", str(wav), "--format", "github", "--out", str(tmp_path / "r"))
    assert result.code in (0, 1), result.err
    text = summary.read_text()
    assert "| file | check | severity" in text and "gen.wav" in text
    assert "summary.png" in text
