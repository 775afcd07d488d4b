"""A TorchScript trace that baked in its example's output length (EnCodec traced at 16000
samples keeps 16000 whatever the input): a warning when the tool can still run it, a one-line
error when the stage it found at discovery vanishes in the probe pass."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from upsampcheck.api import check_model

TRACE_LENGTH = 4000  # input samples of the example the trace is made with
FACTOR = 4


class ClippedTransposed(nn.Module):
    """x4 transposed conv, its output cut at ``4 T``: ``int()`` makes the bound a constant of
    the trace (``4 * 4000 = 16000``), so a traced copy clips every longer input at 16000."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(1, 1, 2 * FACTOR, FACTOR, FACTOR // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)[..., : int(x.shape[-1]) * FACTOR]


class ClippedZeroInsertion(nn.Module):
    """Zero insertion x4 (the whole model is one shape-growth stage), cut the same way."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.new_zeros(*x.shape[:-1], x.shape[-1] * FACTOR)
        y[..., ::FACTOR] = x
        return y[..., : int(x.shape[-1]) * FACTOR]


def traced(model: nn.Module, path) -> str:
    with warnings.catch_warnings():  # TracerWarning (the int() bound), torch.jit deprecation
        warnings.simplefilter("ignore")
        trace = torch.jit.trace(model.eval(), torch.randn(1, 1, TRACE_LENGTH), check_trace=False)
        torch.jit.save(trace, str(path))
    return str(path)


def fixed_length_warnings(report: dict) -> list[dict]:
    return [
        f
        for f in report["findings"]
        if f["check"] == "discovery" and "does not follow the input" in f["message"]
    ]


def test_a_trace_that_clips_its_output_gets_a_warning_with_the_lengths(cli, tmp_path):
    """Discovery runs 1/16 of the input (512 of 8192 samples: out 4 x 512 = 2048, below the
    clip); the probe pass runs L >= 8192 samples, whose output stays 16000, not 4 L."""
    path = traced(ClippedTransposed(), tmp_path / "trace.pt")
    result = cli("model", path, "--trust-checkpoint", "--sample-rate", "16000",
                 "--input-shape", "1,8192", "--format", "json", "--no-plots")  # fmt: skip
    report = result.json()
    length = report["probe_samples"]
    (warning,) = fixed_length_warnings(report)
    assert warning["severity"] == "warn" and warning["stage"] == "model"
    clipped = f"2048 samples for 512 in (x4) but {TRACE_LENGTH * FACTOR} for {length} in"
    assert clipped in warning["message"]
    assert "clips its output at a fixed length" in warning["message"]
    assert f"at the input length the probe uses ({length} samples)" in warning["fix"]


def test_the_same_model_eager_follows_its_input_and_gets_no_warning():
    report = check_model(ClippedTransposed(), sample_rate=16000, input_shape=(1, 8192))
    assert not [f for f in report.findings if "does not follow the input" in f.message]


def test_a_trace_whose_only_stage_vanishes_at_the_probe_length_is_a_one_line_error(cli, tmp_path):
    """The traced zero insertion is ``<root>`` x4 at discovery (512 -> 2048 samples); at the
    probe's length its output, 16000 samples, is shorter than its input: no stage. Exit 2 and
    one line that says why and what to do."""
    path = traced(ClippedZeroInsertion(), tmp_path / "trace.pt")
    result = cli("model", path, "--trust-checkpoint", "--sample-rate", "16000",
                 "--input-shape", "1,8192", "--no-plots")  # fmt: skip
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err
    assert "stages did not run in the tap pass: <root>" in lines[0]
    assert "(2048 samples for 512 in at discovery, 16000 for" in lines[0]
    assert "fixes its output length; trace or export it at" in lines[0]
