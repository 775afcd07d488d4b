"""Bad input and hostile files: exit 2 with one line, quickly, and no folder; and the edge cases
that used to be internal errors (an empty state dict, a model with no stage, an unreached
stage) give a report."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import model_fixtures
import pytest
import torch

import upsampcheck.bounds
from upsampcheck.bounds import SEED
from upsampcheck.cli import main

FAST = ["layer", "--type", "transposed", "--length", "5", "--stride", "4", "--no-plots"]


def exits_2_in_one_line(result, tmp_path: Path, *contains: str) -> None:
    assert result.code == 2, result.err
    assert result.err.count("\n") == 1 and result.err.startswith("upsampcheck: error:")
    assert "Traceback" not in result.err
    for words in contains:
        assert words in result.err
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--stride", "1"], "stride must be an integer from 2 to 256"),
        (["--stride", "257"], "from 2 to 256"),
        (["--length", "4097"], "length must be an integer from 0 to 4096"),
        (["--channels", "0"], "channels must be an integer from 1 to 1024"),
        (["--channels", "1025"], "from 1 to 1024"),
        (["--probe-samples", "15"], "--probe-samples must be an integer from 16"),
        (["--probe-samples", str(2**24 + 1)], "16777216"),
        (["--sample-rate", "0"], "sample rate must be a number of Hz from 1 to 1e+07"),
        (["--sample-rate", "-16000"], "from 1 to 1e+07"),
        (["--sample-rate", "nan"], "(got nan)"),
        (["--sample-rate", "inf"], "(got inf)"),
        (["--sample-rate", "5e-324"], "(got 5e-324)"),  # subnormal
        (["--seed", "-1"], f"--seed must be an integer from 0 to {SEED[1]}"),
        (["--seed", str(2**64)], "--seed"),
    ],
)
def test_every_number_out_of_range_is_exit_2_naming_the_range(cli, tmp_path, args, words):
    exits_2_in_one_line(cli(*FAST, *args), tmp_path, words)


def test_a_probe_shorter_than_the_kernel_is_extended_and_said_so(cli):
    result = cli(*FAST[:-1], "--length", "40", "--probe-samples", "32", "--format", "json",
                 "--no-plots")  # fmt: skip
    report = result.json()
    assert result.code in (0, 1) and report["probe_samples"] > 40
    assert any("--probe-samples 32 is too short" in note for note in report["notes"])


def test_the_largest_seed_torch_accepts_runs(cli):
    assert cli(*FAST, "--seed", str(SEED[1])).code == 1


def test_a_run_that_would_not_fit_in_memory_is_refused_before_it_allocates(
    cli, tmp_path, monkeypatch
):
    monkeypatch.setattr(upsampcheck.bounds, "available_memory", lambda: 2**30)
    result = cli(*FAST, "--channels", "256", "--probe-samples", "1000000")
    exits_2_in_one_line(result, tmp_path, "would need about", "1.0 GiB", "lower --probe-samples")


def test_a_stack_whose_total_factor_is_too_large_is_refused(cli, tmp_path):
    spec = tmp_path / "deep.toml"
    layers = "".join('[[layer]]\ntype = "transposed"\nstride = 16\n' for _ in range(5))
    spec.write_text(f"sample_rate = 16000\n{layers}")
    exits_2_in_one_line(cli("layer", "--config", str(spec)), tmp_path, "at most 65536")


def run_with_deadline(argv: list[str], seconds: float, capsys) -> tuple[int, str, float]:
    """``main(argv)`` in a thread that must finish within ``seconds`` (a FIFO read blocks)."""
    box: dict = {}
    start = time.monotonic()
    thread = threading.Thread(target=lambda: box.update(code=main(argv)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{argv} still running after {seconds} s"
    return box["code"], capsys.readouterr().err, time.monotonic() - start


def bad_path(kind: str, tmp_path: Path) -> str:
    if kind == "fifo":
        path = tmp_path / "pipe.pt"
        os.mkfifo(path)
    elif kind == "directory":
        path = tmp_path / "folder.pt"
        path.mkdir()
    elif kind == "device":
        return os.devnull
    elif kind == "missing":
        path = tmp_path / "missing.pt"
    else:  # a name whose bytes are not UTF-8
        path = Path(os.fsdecode(bytes(tmp_path) + b"/ckpt-\xff\xfe.pt"))
        path.write_bytes(b"junk")
    return str(path)


ROLES = {
    "checkpoint": lambda p: ["model", p, "--arch", "model_fixtures:OnesTransposed"],
    "config": lambda p: ["layer", "--config", p],
    "threshold config": lambda p: ["model", "--arch", "model_fixtures:OnesTransposed",
                                   "--config", p],
    "baseline": lambda p: [*FAST, "--baseline", p],
}  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", ["fifo", "directory", "device", "missing", "non-utf8"])
def test_a_file_that_is_not_a_regular_readable_file_is_exit_2_within_a_second(
    tmp_path, capsys, monkeypatch, role, kind
):
    monkeypatch.chdir(tmp_path)
    path = bad_path(kind, tmp_path)
    argv = [*ROLES[role](path), "--out", str(tmp_path / "report")]
    code, err, seconds = run_with_deadline(argv, 10, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert seconds < 1.0 or kind == "non-utf8"  # reading junk may import torch first
    if kind == "non-utf8":
        assert "ckpt-\\xff\\xfe.pt" in err
    else:
        assert {"fifo": "FIFO", "directory": "directory", "device": "device"}.get(
            kind, "no such file"
        ) in err
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("sample_rate = " + "[" * 1000 + "]" * 1000, "nested too deeply"),
        ("x = " + "{a = " * 1000 + "1" + "}" * 1000, "nested too deeply"),
        ("\x00\x01\x02\xff\xfe binary junk", "not valid TOML"),
        ('sample_rate = 1e400\n[[layer]]\ntype = "transposed"\nstride = 4\n', "(got inf)"),
        ('sample_rate = 16000\n[[layer]]\ntype = "transposed"\nstride = 99999999999\n', "stride"),
        ('sample_rate = 16000\n[thresholds]\ntonal-fail-db = -1e400\n[[layer]]\ntype = "nearest"\n'
         "stride = 2\n", "finite"),
    ],
)  # fmt: skip
def test_a_hostile_toml_is_exit_2_naming_the_file(cli, tmp_path, text, words):
    spec = tmp_path / "hostile.toml"
    spec.write_bytes(text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text)
    exits_2_in_one_line(cli("layer", "--config", str(spec)), tmp_path, "hostile.toml", words)


def test_a_deeply_nested_baseline_is_exit_2(cli, tmp_path):
    baseline = tmp_path / "base.json"
    baseline.write_text("[" * 100000 + "]" * 100000)
    exits_2_in_one_line(cli(*FAST, "--baseline", str(baseline)), tmp_path, "base.json")


def test_an_empty_state_dict_loads_into_a_parameterless_architecture(cli, tmp_path):
    ckpt = tmp_path / "empty.pt"
    torch.save(model_fixtures.Parameterless().state_dict(), ckpt)
    result = cli("model", str(ckpt), "--arch", "model_fixtures:Parameterless",
                 "--input-shape", "1,4000", "--format", "json", "--no-plots")  # fmt: skip
    assert result.code == 0, result.err
    (stage,) = result.json()["stages"]
    assert stage["factor"] == 2 and stage["fs_in_hz"] == 8000  # 16 kHz output by default


def test_a_checkpoint_that_is_no_state_dict_is_named_with_its_article(cli, tmp_path):
    ckpt = tmp_path / "list.pt"
    torch.save([1, 2, 3], ckpt)
    result = cli("model", str(ckpt), "--arch", "model_fixtures:Parameterless")
    exits_2_in_one_line(result, tmp_path, "holds a list, not a state dict")


def test_a_model_without_an_upsampling_stage_passes_with_its_report_and_plots_on(cli, tmp_path):
    result = cli("model", "--arch", "model_fixtures:NoUpsampling", "--input-shape", "4,2000")
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["stages"] == [] and report["verdict"] == "pass"
    assert any("no upsampling stage" in f["message"] for f in report["findings"])


def test_a_stage_no_probe_reaches_is_driven_alone_and_warns_with_its_own_lines(cli, tmp_path):
    """``unused`` only ever sees zeros (a noise branch at z = 0): not measured in the model,
    but driven alone its DC lines are those of its polyphase sums, so it warns."""
    from oracles import dc_line_levels

    from upsampcheck.subjects.loading import load_model

    result = cli("model", "--arch", "model_fixtures:UnreachedBranch", "--input-shape", "1,4000",
                 "--format", "json", "--no-plots")  # fmt: skip
    assert result.code in (0, 1), result.err
    report = result.json()
    assert [s["name"] for s in report["stages"]] == ["up"]
    (finding,) = [f for f in report["findings"] if f["stage"] == "unused"]
    assert finding["severity"] == "warn" and "not reached by the probes" in finding["message"]
    loaded = load_model(None, "model_fixtures:UnreachedBranch", None, False, 0, None)
    weight = loaded.module.unused.weight.detach().double().numpy()
    expected = dc_line_levels(weight, 4, 16000)
    loudest = max(expected, key=expected.get)
    assert finding["freq_hz"] == pytest.approx(loudest)
    assert finding["level_db"] == pytest.approx(expected[loudest], abs=0.5)


def test_a_forward_pass_that_never_returns_is_stopped_by_timeout_naming_the_stage(cli, tmp_path):
    start = time.monotonic()
    result = cli("model", "--arch", "model_fixtures:NeverReturns", "--input-shape", "1,4000",
                 "--timeout", "1")  # fmt: skip
    assert time.monotonic() - start < 10
    exits_2_in_one_line(result, tmp_path, "--timeout 1 s", "'stuck' (_Spin)")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_a_timeout_that_is_not_a_positive_number_is_refused(cli, tmp_path, value):
    result = cli("model", "--arch", "model_fixtures:OnesTransposed", "--timeout", value)
    exits_2_in_one_line(result, tmp_path, "--timeout must be a positive number")


def test_a_model_run_that_would_not_fit_in_memory_is_refused_after_discovery(
    cli, tmp_path, monkeypatch
):
    monkeypatch.setattr(upsampcheck.bounds, "available_memory", lambda: 2**28)
    result = cli("model", "--arch", "model_fixtures:OnesTransposed", "--input-shape", "1,4000000")
    exits_2_in_one_line(result, tmp_path, "would need about", "shorten --input-shape")


def test_a_model_without_sample_rate_says_16000_hz_was_assumed(cli):
    result = cli("model", "--arch", "model_fixtures:OnesTransposed", "--format", "json",
                 "--no-plots")  # fmt: skip
    notes = result.json()["notes"]
    assert result.json()["sample_rate_hz"] == 16000
    assert any("no --sample-rate given" in note for note in notes)
    given = cli("model", "--arch", "model_fixtures:OnesTransposed", "--sample-rate", "16000",
                "--format", "json", "--no-plots")  # fmt: skip
    assert not any("no --sample-rate" in note for note in given.json()["notes"])
