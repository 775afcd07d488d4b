"""Issue 20: every stage of a model at 0.01 dB of its definition, computed in float64 from the
layers' weights and the probe the tool used (tests/oracles.py), never from the tool's code.

Stages whose output is not exactly ``S · T`` (padded and unpadded subpixel layers, zero
insertion, a x2 that crops to ``2 T − 4``) run at the rates of their integer factor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from oracles import (
    box,
    driven_dc_lines,
    driven_signal_gain,
    dtft_power,
    response_re_band_db,
    subpixel_kernel,
)
from torch import nn

from upsampcheck.model.check import ModelOptions, check_model
from upsampcheck.subjects.loading import LoadedModel

FS = 16000.0
EXACT_DB = 0.01
POINTS = (0.25, 0.5, 0.75, 0.9)


class Subpixel(nn.Module):
    """Conv to ``S`` phases (kernel ``L``, ``pad`` each side), interleaved into time: its
    output is ``S (T + 2 pad − L + 1)`` samples, not ``S T`` unless padded to the kernel."""

    def __init__(self, stride: int, length: int, pad: int, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.stride = stride
        self.conv = nn.Conv1d(1, stride, length, padding=pad, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        b, _, t = h.shape
        return h.view(b, 1, self.stride, t).permute(0, 1, 3, 2).reshape(b, 1, t * self.stride)

    def kernel(self) -> np.ndarray:
        return subpixel_kernel(self.conv.weight.detach().double().numpy(), self.stride)


class _Stuff(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.new_zeros(*x.shape[:-1], x.shape[-1] * self.stride)
        y[..., :: self.stride] = x
        return y


class ZeroInsertConv(nn.Module):
    """Zero insertion by ``S`` (stage ``stuff``), then a conv of length ``L`` (no padding)."""

    def __init__(self, stride: int, length: int, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.stuff = _Stuff(stride)
        self.conv = nn.Conv1d(1, 1, length, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.stuff(x))


class _HoldCrop(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.unsqueeze(-1).expand(*x.shape, 2).reshape(*x.shape[:-1], 2 * x.shape[-1])
        return y[..., 2:-2]


class CroppingDouble(nn.Module):
    """Sample-and-hold x2 that crops its output to ``2 T − 4`` (stage ``up``), then a conv."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.up = _HoldCrop()
        self.conv = nn.Conv1d(1, 1, 5, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))


def run(model: nn.Module, frames: int):
    return run_shape(model, (1, frames))


def run_shape(model: nn.Module, shape: tuple[int, ...]):
    return check_model(
        LoadedModel(model.eval(), "module"), ModelOptions(sample_rate=FS, input_shape=shape)
    )


def dc_lines(measurement_or_lines) -> dict[float, float]:
    lines = getattr(measurement_or_lines, "lines", measurement_or_lines)
    return {round(ln.freq_hz, 6): ln.level_db for ln in lines if ln.probe == "dc"}


def assert_lines(got: dict[float, float], want: dict[float, float]) -> None:
    loud = {round(f, 6): v for f, v in want.items() if v > -100}
    assert set(loud) <= set(got), (got, loud)
    for freq, level in loud.items():
        assert got[freq] == pytest.approx(level, abs=EXACT_DB), freq


def between_bins(fractions: np.ndarray, exact_db: np.ndarray, point: float) -> float:
    """docs/method.md's response point from the exact bin values: the value on a driven bin,
    else the least-squares quadratic through the three driven bins on each side."""
    on = np.nonzero(np.abs(fractions - point) < 1e-12)[0]
    if len(on):
        return float(exact_db[on[0]])
    right = int(np.searchsorted(fractions, point))
    near = np.arange(max(0, right - 3), min(len(fractions), right + 3))
    centre = fractions[near].mean()
    fit = np.polyfit(fractions[near] - centre, exact_db[near], 2)
    return float(np.polyval(fit, point - centre))


def assert_response(stage, kernel: np.ndarray, stride: int, points: bool) -> None:
    """Every driven bin of the response curve, in the chain and driven alone, and (at the
    default length) the four points, which are the stage's own: driven alone."""
    alone = stage.details["standalone"]
    for m in (stage.measurement, alone):
        fractions, curve = m.response_curve
        band = fractions[(fractions >= 0.01) & (fractions <= 0.05)]
        assert len(band) >= 1  # a reference in the band, never the lowest bin
        want = response_re_band_db(kernel, stride, fractions, band)
        audible = want > want.max() - 60
        assert np.abs(curve - want)[audible].max() < EXACT_DB
    if points:  # on a driven bin, or the quadratic through the 3 driven bins each side
        expected = [between_bins(fractions, want, p) for p in POINTS]
        got = [stage.measurement.response_db[str(p)] for p in POINTS]
        assert got == pytest.approx(expected, abs=EXACT_DB)


SUBPIXELS = {
    "padded-even": (8, 2, 1),
    "padded-odd": (8, 3, 1),
    "unpadded-even": (8, 2, 0),
    "unpadded-odd": (8, 9, 0),
    "padded-odd-x4": (4, 5, 2),
}


@pytest.mark.parametrize("frames", [2048, 50])
@pytest.mark.parametrize("name", SUBPIXELS)
def test_a_subpixel_stage_whose_length_is_not_s_t_runs_at_its_integer_factor(name, frames):
    stride, length, pad = SUBPIXELS[name]
    model = Subpixel(stride, length, pad, seed=length)
    report = run(model, frames)
    (stage,) = report.stages
    assert (stage.factor, stage.fs_in_hz) == (stride, FS / stride)
    m = stage.measurement
    assert m.periodicity_error_db <= -100
    assert not [f for f in report.findings if f.check == "periodicity"]
    kernel = model.kernel()
    assert_lines(dc_lines(m), driven_dc_lines(kernel[None, None], stride, FS, m.period_in, 1))
    assert_response(stage, kernel, stride, points=frames == 2048)


def test_zero_insertion_then_a_conv_is_exact_at_the_stage_and_the_output():
    model = ZeroInsertConv(4, 9)
    report = run(model, 2048)
    (stage,) = report.stages
    assert (stage.name, stage.factor, stage.fs_in_hz) == ("stuff", 4, 4000.0)
    m = stage.measurement
    one = np.ones((1, 1, 1))
    assert_lines(dc_lines(m), driven_dc_lines(one, 4, FS, m.period_in, 1))
    assert m.response_db == pytest.approx(dict.fromkeys(map(str, POINTS), 0.0), abs=EXACT_DB)
    conv = model.conv.weight.detach().double().numpy()[:, :, ::-1].copy()  # correlation
    assert_lines(dc_lines(report.output_lines), driven_dc_lines(conv, 4, FS, m.period_in, 1))


def test_a_x2_that_crops_to_2t_minus_4_is_a_stage_at_its_rates():
    report = run(CroppingDouble(), 2048)
    (stage,) = report.stages
    assert (stage.name, stage.factor, stage.fs_in_hz) == ("up", 2, 8000.0)
    m = stage.measurement
    assert dc_lines(m) == {}  # a hold has zeros at every m fs_in
    assert_response(stage, box(2), 2, points=True)
    assert not [f for f in report.findings if f.check in ("periodicity", "discovery")]


class BiasedOutput(nn.Module):
    """ConvTranspose1d(1, 4, K16, S8) without bias, then a 1x1 conv to one channel whose bias
    is 0.01: the output under silence is 0.01, -40 dBFS, after the last upsampler."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.up = nn.ConvTranspose1d(1, 4, 16, 8, 4, bias=False)
        self.out = nn.Conv1d(4, 1, 1)
        with torch.no_grad():
            self.out.bias.fill_(0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.up(x))


def test_a_bias_after_the_last_upsampler_is_an_offset_finding_of_the_output_at_minus_40_dbfs():
    model = BiasedOutput()
    report = run(model, 2048)
    (offset,) = [f for f in report.findings if f.check == "offset" and f.stage == "output"]
    assert offset.severity in ("warn", "fail")
    assert "(-40.0 dBFS)" in offset.message and "after the last upsampler up" in offset.message
    # re signal level: 0.01² over the driven-bin power of the whole chain's kernel at RMS 0.1
    up = model.up.weight.detach().double().numpy()[0]  # (4, 16)
    mix = model.out.weight.detach().double().numpy()[0, :, 0]  # (4,)
    kernel = (mix[:, None] * up).sum(0)
    period = report.stages[0].measurement.period_in
    signal = 0.1**2 * driven_signal_gain(kernel[None, None], 8, period, 1)
    assert offset.level_db == pytest.approx(10 * math.log10(0.01**2 / signal), abs=EXACT_DB)
    (own,) = [f for f in report.findings if f.check == "offset" and f.stage == "up"]
    assert own.severity == "pass"


class Wide(nn.Module):
    """ConvTranspose1d(C, C, K9, S8) with bias: every transfer function its own kernel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        torch.manual_seed(channels)
        self.up = nn.ConvTranspose1d(channels, channels, 9, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


@pytest.mark.parametrize("channels", [3, 4, 8])
def test_each_input_channel_of_a_model_gets_its_own_bins(channels):
    model = Wide(channels)
    report = run_shape(model, (channels, 2048))
    (stage,) = report.stages
    m = stage.measurement
    weight = model.up.weight.detach().double().numpy()  # (in, out, L)
    bias = model.up.bias.detach().double().numpy()
    period, stride = m.period_in, 8
    # every H_oc alone, on its own channel's bins
    assert m.transfers is not None and len(m.transfers) == channels**2
    for (o, c), (fractions, measured) in m.transfers.items():
        want = 10 * np.log10(dtft_power(weight[c, o], fractions / (2 * stride)))
        audible = want > want.max() - 60
        assert np.abs(measured - want)[audible].max() < EXACT_DB, (o, c)

    # the response: mean_c Σ_o |H_oc|² re its mean over the driven bins in 1–5 %
    def gain(f):
        return sum(dtft_power(weight[c, o], f) for c in range(channels) for o in range(channels))

    alone = stage.details["standalone"]  # the filtering and replicas numbers are its own
    fractions = alone.response_curve[0]
    band = fractions[(fractions >= 0.01) & (fractions <= 0.05)]
    assert len(band) >= channels and m.reference_bins == len(band)  # a bin of every channel
    assert stage.details["chain"]["reference_bins"] >= channels
    for point in POINTS:
        want = 10 * np.log10(gain(np.array([point / 16]))[0] / gain(band / 16).mean())
        assert m.response_db[str(point)] == pytest.approx(want, abs=EXACT_DB), point
    exact = 10 * np.log10(gain(np.linspace(0, 1, 4001) / 16) / gain(band / 16).mean())
    if m.minus3db_fraction is None:
        assert exact[np.linspace(0, 1, 4001) <= fractions[-1]].min() > -3.0
    else:
        at = 10 * np.log10(gain(np.array([m.minus3db_fraction / 16]))[0] / gain(band / 16).mean())
        assert at == pytest.approx(-3.0, abs=0.05)
    # images: the bin nearest fs_in/8 carries one channel, c; its first image N − q
    q, n = round(m.image_tone_hz / alone.bin_hz), alone.period_in
    c = ((q - 1) // 2) % channels
    f_tone, f_image = q / (n * stride), (n - q) / (n * stride)
    tone = sum(dtft_power(weight[c, o], np.array([f_tone]))[0] for o in range(channels))
    image = sum(dtft_power(weight[c, o], np.array([f_image]))[0] for o in range(channels))
    assert m.image_rejection_db == pytest.approx(10 * np.log10(image / tone), abs=EXACT_DB)
    # DC lines (the summed polyphase formula) and the bias's DC, re the driven-bin signal level
    assert_lines(dc_lines(m), driven_dc_lines(weight, stride, FS, period, channels))
    signal = 0.1**2 * driven_signal_gain(weight, stride, period, channels)
    assert m.dc_db == pytest.approx(10 * np.log10((bias**2).mean() / signal), abs=EXACT_DB)


class LinearThenTransposed(nn.Module):
    """``F.interpolate(linear, x2)`` then ConvTranspose1d(3, 3, K4, S2): the second stage's
    input holds almost nothing near its Nyquist (the triangle's zero at ``fs_in``)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.up = nn.ConvTranspose1d(3, 3, 4, 2, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(nn.functional.interpolate(x, scale_factor=2, mode="linear"))


def test_no_response_point_is_reported_beyond_the_last_bin_the_probe_reached():
    model = LinearThenTransposed().eval()
    options = ModelOptions(sample_rate=FS, input_shape=(3, 2048), standalone=False)
    report = check_model(LoadedModel(model, "module"), options)
    stage = report.stages[-1]
    top = stage.measurement.response_curve[0][-1]
    assert top < 0.9
    assert stage.measurement.response_db["0.9"] is None
    assert any(f"{stage.name}: the probe reaches {top:.3g}" in note for note in report.notes)
    for s in report.stages:
        assert all(v is None or -60 < v < 20 for v in s.measurement.response_db.values())
    # Driven alone, the stage reaches its whole band: its own number is that, the chain's None.
    both = run_shape(LinearThenTransposed(), (3, 2048)).stages[-1]
    assert both.details["chain"]["response_db"]["0.9"] is None
    weight = model.up.weight.detach().double().numpy()

    def gain(f):
        return sum(dtft_power(weight[c, o], f) for c in range(3) for o in range(3))

    fractions = both.details["standalone"].response_curve[0]
    band = fractions[(fractions >= 0.01) & (fractions <= 0.05)]
    want = 10 * np.log10(gain(np.array([0.9 / 4]))[0] / gain(band / 4).mean())
    assert both.measurement.response_db["0.9"] == pytest.approx(want, abs=EXACT_DB)
