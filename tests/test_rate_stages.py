"""Stages where the signal's rate changes, whatever the op, and lines attributed through the
ops after them: a WaveGlow-like interleave of 8 channels into time, an iSTFT head (a stage
that cannot be driven alone: its input is complex) and a ConvTranspose1d stack followed by a
final /2 (Demucs v2's ``resample_frac(x, 2, 1)``, or a strided slice, or interpolate x0.5).
Small stand-ins built here; each test asserts the stage, rates, line frequencies, levels and
origins the construction predicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from upsampcheck.model.check import ModelOptions, check_model
from upsampcheck.subjects.loading import LoadedModel

try:
    from vocoderlike import pattern_lines
except ImportError:  # tests/ run as a package
    from tests.vocoderlike import pattern_lines

FS = 16000.0


def check(model: nn.Module, shape: tuple[int, ...]):
    torch.manual_seed(0)
    return check_model(
        LoadedModel(model.eval(), "module"), ModelOptions(sample_rate=FS, input_shape=shape)
    )


def lines_of(report, probe: str) -> dict[float, object]:
    """The output's lines of one probe, by frequency."""
    return {ln.freq_hz: ln for ln in report.output_lines if ln.probe == probe}


def output_finding(report):
    return next(f for f in report.findings if f.check == "tonal" and f.stage == "output")


# -- WaveGlow: the x8 interleave of the flows' 8 channels ---------------------------------------


class WaveGlowLike(nn.Module):
    """Three invertible-1x1-conv-like flows on ``(B, 8, T)``, then WaveGlow's interleave
    ``(B, 8, T) -> (B, 1, 8 T)``: the last flow's bias gives each of the 8 output phases its
    own DC, the others have none."""

    BIAS = (0.3, -0.1, 0.2, 0.05, -0.25, 0.15, 0.0, 0.1)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.flows = nn.ModuleList(nn.Conv1d(8, 8, 1) for _ in range(3))
        with torch.no_grad():
            for flow in self.flows:
                q, _ = torch.linalg.qr(torch.randn(8, 8))  # orthogonal, as WaveGlow's
                flow.weight.copy_(q[..., None])
                flow.bias.zero_()
            self.flows[-1].bias.copy_(torch.tensor(self.BIAS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for flow in self.flows:
            x = flow(x)
        return x.permute(0, 2, 1).reshape(x.shape[0], 1, -1)


def test_waveglow_interleave_is_a_x8_stage_at_exact_rates_owning_the_k_fs_over_8_lines():
    report = check(WaveGlowLike(), (8, 256))
    assert [(s.name, s.kind, s.factor) for s in report.stages] == [("<root>", "shape-growth", 8)]
    stage = report.stages[0]
    assert stage.fs_in_hz == FS / 8 and stage.fs_out_hz == FS  # exact
    # Under silence each phase r carries b_r: lines at k fs/8 of one-sided power 2|B_k|^2
    # (|B_4|^2 at Nyquist), B_k = sum_r b_r e^{-2 pi i k r / 8} / 8, relative to the signal.
    expected = pattern_lines(np.array(WaveGlowLike.BIAS))
    reference = stage.measurement.signal_power
    silence = lines_of(report, "silence")
    assert sorted(silence) == [k * FS / 8 for k in range(1, 5)]
    own = {ln.freq_hz: ln for ln in stage.measurement.lines if ln.probe == "silence"}
    for k, power in expected.items():
        line = silence[k * FS / 8]
        assert line.origin == "<root>"
        assert line.level_db == pytest.approx(10 * math.log10(power / reference), abs=0.5)
        assert own[k * FS / 8].level_db == pytest.approx(line.level_db, abs=0.01)
    assert all(ln.origin == "<root>" for ln in report.output_lines)


# -- PQMF synthesis: zero-stuffing named by the module that owns the filter ---------------------


class PQMF(nn.Module):
    """A PQMF bank's synthesis as ParallelWaveGAN writes it: zero-stuffing by
    ``conv_transpose1d`` with ``updown_filter * subbands`` (stride ``subbands``), then the
    synthesis FIR over the padded subbands."""

    def __init__(self, subbands: int = 4, taps: int = 16) -> None:
        super().__init__()
        self.subbands = subbands
        torch.manual_seed(3)
        self.register_buffer("synthesis_filter", 0.2 * torch.randn(1, subbands, taps + 1))
        updown = torch.zeros(subbands, subbands, subbands)
        updown[range(subbands), range(subbands), 0] = 1.0
        self.register_buffer("updown_filter", updown)
        self.pad = nn.ConstantPad1d(taps // 2, 0.0)

    def synthesis(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv_transpose1d(x, self.updown_filter * self.subbands, stride=self.subbands)
        return F.conv1d(self.pad(x), self.synthesis_filter)


class MultiBand(nn.Module):
    """A subband generator (a 1x1 conv whose bias is each subband's DC under silence) and
    the PQMF synthesis, called as a method from this ``forward``."""

    BIAS = (0.2, -0.1, 0.15, 0.05)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.net = nn.Conv1d(4, 4, 1)
        with torch.no_grad():
            self.net.bias.copy_(torch.tensor(self.BIAS))
        self.pqmf = PQMF()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pqmf.synthesis(self.net(x))

    def silence_pattern(self) -> np.ndarray:
        """One period (4 samples) of the output under silence, up to a shift: subband ``k``
        is ``4 b_k`` every 4th sample, so phase ``r`` sums ``4 b_k h_k[j]`` over ``j = r mod 4``."""
        h = self.pqmf.synthesis_filter[0].double().numpy()
        h = np.pad(h, ((0, 0), (0, -h.shape[1] % 4)))
        phases = h.reshape(4, -1, 4).sum(1)  # (subband, phase)
        return 4 * np.asarray(self.BIAS) @ phases


def test_pqmf_zero_stuffing_is_a_x4_stage_named_by_the_filter_owner_with_its_lines():
    model = MultiBand()
    report = check(model, (4, 128))
    stages = [(s.name, s.kind, s.factor, s.fs_in_hz, s.fs_out_hz) for s in report.stages]
    assert stages == [("pqmf:conv_transpose1d", "transposed", 4, FS / 4, FS)]
    silence = lines_of(report, "silence")
    assert sorted(silence) == [FS / 4, FS / 2]
    assert {ln.origin for ln in report.output_lines} == {"pqmf:conv_transpose1d"}
    expected = pattern_lines(model.silence_pattern())
    assert silence[FS / 4].level_db - silence[FS / 2].level_db == pytest.approx(
        10 * math.log10(expected[1] / expected[2]), abs=0.5
    )


# -- iSTFT head: a x hop stage that cannot be driven alone ----------------------------------


class ISTFTHead(nn.Module):
    """A frame-rate conv to log-magnitude and phase, ``polar``, ``torch.istft`` (n_fft 16,
    hop 4): a constant input gives every frame the same spectrum, so the output repeats every
    hop: lines at k fs/4."""

    N_FFT, HOP = 16, 4

    def __init__(self) -> None:
        super().__init__()
        bins = self.N_FFT // 2 + 1
        torch.manual_seed(2)
        self.mag = nn.Conv1d(4, bins, 1)
        self.phase = nn.Conv1d(4, bins, 1)
        self.register_buffer("window", torch.hann_window(self.N_FFT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.polar(torch.exp(self.mag(x)), self.phase(x))
        y = torch.istft(z, self.N_FFT, self.HOP, window=self.window, center=True)
        return y.unsqueeze(1)

    def silence_pattern(self) -> np.ndarray:
        """One hop of the steady-state output under silence: each frame is ``irfft(Z)``
        windowed, overlap-added every hop and divided by the summed squared window."""
        with torch.no_grad():
            z = torch.polar(torch.exp(self.mag.bias), self.phase.bias).to(torch.complex128).numpy()
        w = self.window.double().numpy()
        frame = np.fft.irfft(z, self.N_FFT) * w
        num = frame.reshape(-1, self.HOP).sum(0)
        den = (w**2).reshape(-1, self.HOP).sum(0)
        return num / den


def test_istft_head_owns_its_k_fs_over_4_lines_made_at_or_after_it():
    model = ISTFTHead()
    report = check(model, (4, 64))
    assert report.stages == []  # its input is complex: found, not measured
    info = {f.stage: f.message for f in report.findings if f.check == "discovery"}
    assert "istft x4 found but not measured: its input is complex" in info["<root>:istft"]
    silence = lines_of(report, "silence")
    assert sorted(silence) == [FS / 4, FS / 2]
    assert {ln.origin for ln in report.output_lines} == {"<root>:istft"}
    # Their relative level is the hop pattern's: 2|P_1|^2 at fs/4 against |P_2|^2 at fs/2.
    expected = pattern_lines(model.silence_pattern())
    assert silence[FS / 4].level_db - silence[FS / 2].level_db == pytest.approx(
        10 * math.log10(expected[1] / expected[2]), abs=0.5
    )
    finding = output_finding(report)
    assert "made at or after <root>:istft, which could not be measured alone" in finding.message
    assert "multiples of its 4000 Hz input rate" in finding.cause
    assert not any("nonlinearity after the last upsampler" in f.cause for f in report.findings)


# -- ConvTranspose1d x4 x4, then /2: lines keep the origin of the grid they lie on ---------------


class ConvTThenHalf(nn.Module):
    """``up`` ConvTranspose1d x4 with unequal polyphase gains (kernel [1, 0.8, 0.6, 0.4]: a
    constant comes out with period 4, lines at multiples of its 2 kHz input rate), ``up2``
    ConvTranspose1d x4 holding each sample (equal gains: no line of its own, its images of
    ``up``'s lines vanish at multiples of 8 kHz), then a /2 back to the output rate, as Demucs
    v2 ends: the output at fs runs at half ``up2``'s output rate."""

    KERNEL = (1.0, 0.8, 0.6, 0.4)

    def __init__(self, half: str) -> None:
        super().__init__()
        self.half = half
        self.up = nn.ConvTranspose1d(1, 1, 4, stride=4, bias=False)
        self.up2 = nn.ConvTranspose1d(1, 1, 4, stride=4, bias=False)
        with torch.no_grad():
            self.up.weight.copy_(torch.tensor(self.KERNEL).view(1, 1, 4))
            self.up2.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up2(self.up(x))
        if self.half == "interpolate":
            return F.interpolate(y, scale_factor=0.5, mode="linear")
        if self.half == "slice":
            return y[..., ::2]
        import julius

        return julius.resample_frac(y, 2, 1)


@pytest.mark.parametrize("half", ["julius", "slice", "interpolate"])
def test_lines_through_a_final_half_keep_the_origin_of_the_convt_whose_grid_they_lie_on(half):
    if half == "julius":
        pytest.importorskip("julius")
    report = check(ConvTThenHalf(half), (1, 256))
    rates = [(s.name, s.factor, s.fs_in_hz, s.fs_out_hz) for s in report.stages]
    assert rates == [("up", 4, FS / 8, FS / 2), ("up2", 4, FS / 2, 2 * FS)]  # exact
    up = report.stages[0]
    assert sorted(ln.freq_hz for ln in up.own_lines) == [FS / 8, FS / 4]  # dc probe
    # up2 carries up's lines (images included) and makes none of its own.
    assert report.stages[1].own_lines == []
    dc = lines_of(report, "dc")
    assert sorted(dc) == [FS / 8, FS / 4, 3 * FS / 8]  # up's grid, below the output Nyquist
    assert {ln.origin for ln in report.output_lines} == {"up"}
    assert "introduced by up (lines per stage: up: 3)" in output_finding(report).message
    if half == "slice":
        # y[2n] of the hold of up's output: the pattern g0 g0 g1 g1 g2 g2 g3 g3 every 8
        # output samples, its lines in the ratios of that pattern's DFT.
        expected = pattern_lines(np.repeat(ConvTThenHalf.KERNEL, 2))
        for k in (2, 3):
            assert dc[k * FS / 8].level_db - dc[FS / 8].level_db == pytest.approx(
                10 * math.log10(expected[k] / expected[1]), abs=0.5
            )
