"""Two ways a probe can read a model wrong, and what the tool does instead.

A trace whose output length is constant (an EnCodec decoder traced at 16000 samples keeps 16000
whatever the input): at discovery's short input its length ratio is not the model's factor
(16000 out of 64 in reads as x250), so it is analysed at the length it was traced at when the
shape is inferred, and refused in one line naming that length when ``--input-shape`` asks for
another; never measured at rates read off the fixed output.

A stage whose input carries a long memory (a causal filter thousands of samples long after an
upsampler) has not settled on the first pass: it is probed once more with a longer lead-in,
the input at most twice the first pass's, and a note says what it cost."""

from __future__ import annotations

import math
import re

import pytest
import torch
from test_fixed_length_trace import FACTOR, TRACE_LENGTH, traced
from torch import nn

from upsampcheck.api import check_model
from upsampcheck.model import check, retry


class FixedOutput(nn.Module):
    """x4 transposed conv resized to ``4 T``: ``int()`` makes the size a constant of the trace,
    so a traced copy returns 16000 samples for every input length (short ones stretched, long
    ones squeezed)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.up = nn.ConvTranspose1d(1, 1, 2 * FACTOR, FACTOR, FACTOR // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(self.up(x), size=int(x.shape[-1]) * FACTOR)


def run(cli, path, *extra):
    return cli("model", path, "--trust-checkpoint", "--sample-rate", "16000",
               "--format", "json", "--no-plots", *extra)  # fmt: skip


def test_a_trace_with_a_constant_output_is_analysed_at_its_traced_length(cli, tmp_path):
    """No flags: discovery at 64 samples gives 16000 out (x250, a 64 Hz input rate); the tool
    finds the length where output = x4 input (4000) and measures there, at 4000 Hz in."""
    path = traced(FixedOutput(), tmp_path / "trace.pt")
    result = run(cli, path)
    assert result.code == 1  # the stage's own findings (an untrained x4 conv), not a refusal
    report = result.json()
    assert report["probe_samples"] == TRACE_LENGTH
    assert [(s["name"], s["factor"], s["fs_in_hz"]) for s in report["stages"]] == [
        ("up", 4, 4000.0)
    ]
    assert (
        "the TorchScript archive fixes its output at 16000 samples whatever the input length: "
        "analysed at 4000 input samples, the length it was traced at (output = x4 input there)"
    ) in report["notes"]
    assert not [f for f in report["findings"] if "does not follow the input" in f["message"]]


def test_a_trace_with_a_constant_output_refuses_another_length_in_one_line(cli, tmp_path):
    path = traced(FixedOutput(), tmp_path / "trace.pt")
    result = run(cli, path, "--input-shape", "1,8192")
    assert result.code == 2 and result.out == ""
    assert result.err.strip().splitlines() == [
        "upsampcheck: error: this TorchScript archive fixes its output at 16000 samples "
        "(traced at 4000 input samples): run with --input-shape 1,4000"
    ]


def test_a_trace_with_a_constant_output_runs_at_the_length_it_names(cli, tmp_path):
    path = traced(FixedOutput(), tmp_path / "trace.pt")
    report = run(cli, path, "--input-shape", "1,4000").json()
    assert report["probe_samples"] == TRACE_LENGTH
    assert [(s["name"], s["fs_in_hz"]) for s in report["stages"]] == [("up", 4000.0)]


class LongMemory(nn.Module):
    """x4 transposed conv, a causal decaying filter ``taps`` samples long added to its output
    (a recurrent state that takes thousands of samples to settle), then x2: stage ``up2``'s
    input differs period to period until the lead-in covers the filter. Records the shape of
    every call to the whole model."""

    def __init__(self, taps: int = 6000, memory: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.up1 = nn.ConvTranspose1d(1, 1, 8, 4, 2)
        self.memory = nn.Conv1d(1, 1, taps, bias=False) if memory else None
        if self.memory is not None:
            with torch.no_grad():
                decay = 0.9995 ** torch.arange(taps - 1, -1, -1.0)
                self.memory.weight.copy_(decay * (1 - 0.9995))
        self.up2 = nn.ConvTranspose1d(1, 1, 4, 2, 1)
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        y = self.up1(x)
        if self.memory is not None:
            y = y + self.memory(nn.functional.pad(y, (self.memory.kernel_size[0] - 1, 0)))
        return self.up2(y)


def probe_lengths(model: LongMemory) -> list[int]:
    """The input lengths of the batched probe passes (discovery runs one example at a time)."""
    return [shape[-1] for shape in model.calls if shape[0] > 1]


RETRY_NOTE = re.compile(
    r"lengthened the lead-in by (\d+) samples each side for up2, which had not settled: one "
    r"more probe pass of (\d+) input samples, (\d\.\d\d)x the first pass's (\d+)"
)


@pytest.fixture
def time_to_spare(monkeypatch) -> None:
    """The run before the retry did much beside the probe pass: the retry may double it."""
    monkeypatch.setattr(check, "retry_growth", lambda done, probe_pass: retry.RETRY_GROWTH)


def test_an_unsettled_stage_is_probed_once_more_at_most_twice_as_long(time_to_spare):
    model = LongMemory().eval()
    report = check_model(model, sample_rate=16000, input_shape=(1, 2048))
    assert probe_lengths(model) == [2048, 4096]  # one retry, the input doubled, not ten-fold
    assert report.probe_samples == 4096
    errors = {s.name: s.measurement.periodicity_error_db for s in report.stages}
    assert errors["up1"] <= -60 and errors["up2"] <= -60  # settled on the retry
    (note,) = [n for n in report.notes if RETRY_NOTE.fullmatch(n)]
    lead, longer, ratio, first = RETRY_NOTE.fullmatch(note).groups()
    assert (int(lead), int(longer), ratio, int(first)) == (1024, 4096, "2.00", 2048)
    assert not [f for f in report.findings if f.check == "periodicity"]


def test_a_stage_still_unsettled_after_the_retry_gets_a_warning_not_a_third_pass(time_to_spare):
    model = LongMemory(taps=16000).eval()
    report = check_model(model, sample_rate=16000, input_shape=(1, 2048))
    assert probe_lengths(model) == [2048, 4096]
    (up2,) = [s for s in report.stages if s.name == "up2"]
    assert up2.measurement.periodicity_error_db > -60
    (warning,) = [f for f in report.findings if f.check == "periodicity"]
    assert warning.stage == "up2" and warning.severity == "warn"
    assert "the last two probe periods differ by" in warning.message
    assert [n for n in report.notes if RETRY_NOTE.fullmatch(n)]


def test_a_model_that_settles_runs_one_probe_pass_and_no_retry_note():
    model = LongMemory(memory=False).eval()
    report = check_model(model, sample_rate=16000, input_shape=(1, 2048))
    assert probe_lengths(model) == [2048]
    assert report.probe_samples == 2048
    assert not [n for n in report.notes if "lengthened the lead-in" in n]


def test_a_stage_whose_length_ratio_is_no_ratio_of_factors_is_unreadable():
    """HTDemucs at a short inferred input: its time decoder's output is 3448 samples where the
    model's is 512 (ratio 0.1485: no product of the stages' factors, no integer, no reciprocal
    of one). Such a rate is recorded as unreadable (check_model then refuses in one line);
    a ratio that snaps (1/4 after a x4 stage) is not."""
    from upsampcheck.model.rates import PassPlan
    from upsampcheck.subjects.stages import Stage

    stage = Stage("tdecoder.0.conv_tr", "ConvTranspose1d", 4.0, (1, 8, 862), (1, 8, 3448))
    plan = PassPlan(44100.0, 44100.0, 64, 1, 512, [4], {stage.name: []}, [], 512, 1.0)
    plan.layout(stage, 3448)
    assert plan.unreadable == ["tdecoder.0.conv_tr (0.1485)"]
    plan = PassPlan(44100.0, 44100.0, 64, 1, 512, [4], {stage.name: []}, [], 512, 1.0)
    plan.layout(stage, 2048)  # 512 / 2048 = 1/4: the stage runs at 4 x the output rate
    assert plan.unreadable == []


def test_the_retry_adds_no_more_model_work_than_the_run_had_done():
    """A model whose probe pass is nearly all of its work (DPRNN-TasNet) gets a retry no
    longer than that work allows, or none, with a note; the report is the same on every run
    (the budget is samples through the model, not time)."""
    model = LongMemory().eval()
    report = check_model(model, sample_rate=16000, input_shape=(1, 2048))
    work = [math.prod(shape) for shape in model.calls]
    passes = [i for i, shape in enumerate(model.calls) if shape[0] > 1]
    if len(passes) == 2:  # the retry's work is at most everything before it
        assert work[passes[1]] <= sum(work[: passes[1]])
    else:
        (note,) = [n for n in report.notes if "so it was not tried" in n]
        assert note.endswith("(--input-shape 1,4096 gives it a longer lead-in)")
    again = check_model(LongMemory().eval(), sample_rate=16000, input_shape=(1, 2048))
    assert again.to_json() == report.to_json()


def test_the_retry_length_is_capped_by_growth_and_needs_a_whole_period_each_side():
    assert retry.retry_frames(400, 100) == 800  # 2 measured + 4 lead periods each side: capped
    assert retry.retry_frames(2000, 100) == 2200  # one more period each side at least
    assert retry.retry_frames(400, 100, growth=1.6) == 640
    assert retry.retry_frames(400, 100, growth=1.4) is None  # not one period each side
    assert retry.retry_growth(done=3000, probe_pass=2000) == 1.5
    assert retry.retry_growth(done=30000, probe_pass=2000) == retry.RETRY_GROWTH
    assert retry.retry_growth(done=0, probe_pass=2000) == retry.RETRY_GROWTH  # not counted
