"""Every number at 0.01 dB of DESIGN.md §2's closed forms, computed in float64 from the layers'
actual weights (polyphase sums, DTFT of the kernel), never from the tool's own code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from oracles import (
    biased_layers,
    box,
    dc_line_levels,
    dtft_power,
    half_pixel_triangle,
    image_rejection_db,
    period_lines_db,
    periodic_silence,
    response_re_band_db,
    subpixel_kernel,
)

from upsampcheck.check import check_layer, check_stack
from upsampcheck.model.check import ModelOptions, check_model
from upsampcheck.subjects.layers import LayerSpec, build_layer
from upsampcheck.subjects.loading import LoadedModel
from upsampcheck.subjects.stack import build_stack, parse_stack

FS = 16000.0
EXACT_DB = 0.01
POINTS = (0.25, 0.5, 0.75, 0.9)


def kernel_of(spec: LayerSpec, layer: torch.nn.Module) -> np.ndarray:
    """The single-channel layer as one kernel applied after zero insertion."""
    s = spec.stride
    if spec.type == "transposed":
        return layer.weight.detach().double().numpy()[0, 0]
    if spec.type == "subpixel":
        return subpixel_kernel(layer.conv.weight.detach().double().numpy(), s)
    base = {"nearest": box(s), "linear": half_pixel_triangle(s), "stretch": np.ones(1)}[spec.type]
    if layer.conv is None:
        return base
    return np.convolve(base, layer.conv.weight.detach().double().numpy()[0, 0, ::-1])


def reference_band(m) -> np.ndarray:
    """The driven bins (fractions of the band) a measurement's 1–5 % reference averaged."""
    fractions = m.response_curve[0]
    return fractions[(fractions >= 0.01) & (fractions <= 0.05)]


LAYERS = [
    LayerSpec("transposed", 3, 7, bias=False),
    LayerSpec("transposed", 5, 10, bias=False),
    LayerSpec("subpixel", 6, 3, bias=False),
    LayerSpec("subpixel", 7, 2, bias=False),
    LayerSpec("nearest", 5, 0),
    LayerSpec("nearest", 3, 4, bias=False),
    LayerSpec("linear", 2, 0),
    LayerSpec("linear", 10, 0),
    LayerSpec("stretch", 7, 9, bias=False),
    LayerSpec("stretch", 10, 0),
]


@pytest.mark.parametrize("spec", LAYERS, ids=lambda s: f"{s.type}x{s.stride}L{s.kernel_length}")
def test_single_layer_response_images_and_dc_lines_are_the_closed_forms(spec):
    report = check_layer(spec, FS, seed=3)
    m = report.stages[0].measurement
    kernel = kernel_of(spec, build_layer(spec, seed=3))
    expected = response_re_band_db(kernel, spec.stride, POINTS, reference_band(m))
    for point, want in zip(POINTS, expected, strict=True):
        assert m.response_db[str(point)] == pytest.approx(want, abs=EXACT_DB), point
    fs_in = FS / spec.stride
    want_images = image_rejection_db(kernel, spec.stride, m.image_tone_hz, fs_in)
    assert m.image_rejection_db == pytest.approx(want_images, abs=EXACT_DB)
    assert abs(m.image_tone_hz - fs_in / 8) <= m.bin_hz * 1.001
    lines = dc_line_levels(kernel[None, None], spec.stride, FS)
    dc = {round(ln.freq_hz, 6): ln.level_db for ln in m.lines if ln.probe == "dc"}
    louder = {round(f, 6): v for f, v in lines.items() if v > -100}
    assert set(louder) <= set(dc)
    for freq, level in louder.items():
        assert dc[freq] == pytest.approx(level, abs=EXACT_DB)
    assert [ln for ln in m.lines if ln.probe == "noise"] == []
    # PyTorch's linear mode computes source positions in float32: -76 dB for x10, not -140.
    assert m.periodicity_error_db <= (-70 if spec.type == "linear" else -120)


def test_a_line_exactly_at_the_output_nyquist_is_one_bin_not_doubled():
    spec = LayerSpec("transposed", 2, 3, bias=False, init="ones")  # P = [2, 1]: W_1 = 1
    m = check_layer(spec, FS).stages[0].measurement
    (line,) = [ln for ln in m.lines if ln.probe == "dc"]
    assert line.freq_hz == FS / 2
    expected = dc_line_levels(np.ones((1, 1, 3)), 2, FS)[FS / 2]
    assert line.level_db == pytest.approx(expected, abs=EXACT_DB)  # -6.99 dB
    assert expected == pytest.approx(10 * math.log10(1 / 4 / (3 / 2)), abs=1e-9)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_every_transfer_function_of_a_multichannel_layer_is_measured_alone(channels):
    spec = LayerSpec("transposed", 4, 8, channels=channels, bias=False)
    m = check_layer(spec, FS, seed=channels).stages[0].measurement
    weight = build_layer(spec, seed=channels).weight.detach().double().numpy()  # (in, out, L)
    assert m.transfers is not None and len(m.transfers) == channels**2
    worst = 0.0
    for (o, c), (fractions, measured) in m.transfers.items():
        want = 10 * np.log10(dtft_power(weight[c, o], fractions / 8))
        audible = want > want.max() - 60  # away from the kernel's own zeros
        worst = max(worst, float(np.abs(measured - want)[audible].max()))
    assert worst < EXACT_DB
    # The stage's response is the white-noise power gain mean_c Σ_o |H_oc|².
    band = np.linspace(0.01, 0.05, 2001) / 8

    def gain(f):
        return sum(dtft_power(weight[c, o], f) for c in range(channels) for o in range(channels))

    for point in POINTS:
        want = 10 * np.log10(gain(np.array([point / 8]))[0] / gain(band).mean())
        assert m.response_db[str(point)] == pytest.approx(want, abs=EXACT_DB)
    # DC on every input: the summed polyphase formula.
    expected = dc_line_levels(weight, 4, FS)
    dc = {round(ln.freq_hz): ln.level_db for ln in m.lines if ln.probe == "dc"}
    assert dc == pytest.approx({round(f): v for f, v in expected.items()}, abs=EXACT_DB)


class Transposed(torch.nn.Module):
    """One ConvTranspose1d with the given kernel: a model of one stage."""

    def __init__(self, kernel: np.ndarray, stride: int) -> None:
        super().__init__()
        self.up = torch.nn.ConvTranspose1d(1, 1, len(kernel), stride, bias=False)
        with torch.no_grad():
            self.up.weight.copy_(torch.from_numpy(kernel).view(1, 1, -1))

    def forward(self, x):
        return self.up(x)


def test_a_line_at_minus_100_db_beside_one_at_minus_10_db_is_read_exactly():
    # Polyphase sums P_r = 1 + x cos(πr/2) + y (-1)^r: W_1 = 2x, W_2 = 4y (the Nyquist line).
    x = math.sqrt(0.4 / 3.8)  # 2x / sqrt(4 + 2x²) = 10^(-10/20)
    y = 1e-5 * math.sqrt((4 + 2 * x * x) / 8)  # y / sqrt(ΣP² / 8) = 10^(-100/20)
    sums = np.array([1 + x + y, 1 - y, 1 - x + y, 1 - y])
    # float64: float32 rounding of the 0.2-level output is 2e-9, 0.3 % of the -100 dB line.
    model = Transposed(np.tile(sums / 2, 2), 4).double().eval()  # two taps per phase
    kernel = model.up.weight.detach().double().numpy()[0, 0]  # as float32 stores it
    expected = dc_line_levels(kernel[None, None], 4, FS)
    assert expected[4000.0] == pytest.approx(-10.0, abs=1e-3)
    assert expected[8000.0] == pytest.approx(-100.0, abs=0.05)
    report = check_model(
        LoadedModel(model, "module"),
        ModelOptions(sample_rate=FS, input_shape=(1, 4096)),
    )
    dc = {ln.freq_hz: ln.level_db for ln in report.stages[0].measurement.lines if ln.probe == "dc"}
    assert dc == pytest.approx(expected, abs=EXACT_DB)


STACKS = {
    "8.8.2.2": (8, 8, 2, 2),
    "10.10.2.2": (10, 10, 2, 2),
    "5.3.7": (5, 3, 7),
}


def biased_stack(strides: tuple[int, ...]):
    layers = biased_layers(strides)
    return parse_stack(
        {"name": "biased", "sample_rate": 24000 * math.prod(strides) / 64, "seed": 5,
         "layer": layers},
        "biased.toml",
    )  # fmt: skip


@pytest.mark.parametrize("name", STACKS)
def test_each_stage_of_a_biased_linear_stack_has_its_own_kernel_s_response_and_images(name):
    spec = biased_stack(STACKS[name])
    report = check_stack(spec)
    modules = build_stack(spec)
    ups = [m for m in modules if isinstance(m, torch.nn.ConvTranspose1d)]
    for stage, module in zip(report.stages, ups, strict=True):
        m, s = stage.measurement, stage.factor
        kernel = module.weight.detach().double().numpy()[0, 0]
        alone = stage.details["standalone"]  # a stage's filtering numbers are its own
        expected = response_re_band_db(kernel, s, POINTS, reference_band(alone))
        got = [m.response_db[str(p)] for p in POINTS]
        assert got == pytest.approx(list(expected), abs=EXACT_DB), stage.name
        images = image_rejection_db(kernel, s, m.image_tone_hz, stage.fs_in_hz)
        assert m.image_rejection_db == pytest.approx(images, abs=EXACT_DB), stage.name
        # Linear: the multitone (silence subtracted) leaves every grid bin empty.
        assert [ln for ln in m.lines if ln.probe == "noise"] == [], stage.name
        assert m.periodicity_error_db < -100
    # The biases feed the later upsamplers: their offsets become lines under silence.
    assert any(ln.probe == "silence" for ln in report.output_lines)
    assert [ln for ln in report.output_lines if ln.probe == "noise"] == []


@pytest.mark.parametrize("name", STACKS)
def test_bias_lines_through_a_linear_stack_are_the_periodic_closed_form(name):
    """Every bias feeds the later layers: under silence the stack's output is periodic with
    the product of the strides, and its lines are those of that period (oracles.py), at
    0.01 dB, absolute (the level re the output's signal level plus that level)."""
    spec = biased_stack(STACKS[name])
    report = check_stack(spec)
    layers = []
    for layer, module in zip(spec.layers, build_stack(spec), strict=True):
        w = module.weight.detach().double().numpy()[0, 0]
        b = float(module.bias.detach().double()[0])
        layers.append((layer.type, w, b, getattr(layer, "stride", 1)))
    expected = period_lines_db(periodic_silence(layers), spec.sample_rate)
    reference = 10 * math.log10(report.stages[-1].measurement.signal_power)
    got = {
        ln.freq_hz: ln.level_db + reference for ln in report.output_lines if ln.probe == "silence"
    }
    loud = {f: v for f, v in expected.items() if v - reference > -100}  # above the line floor
    assert set(loud) <= set(got) and len(loud) >= 3
    for freq, level in loud.items():
        assert got[freq] == pytest.approx(level, abs=EXACT_DB), freq


def test_relu_stack_offset_replicas_match_a_long_gaussian_monte_carlo_average():
    """The talk's Demucs-like decoder (paper/demucs.toml, first three stages): what the ReLUs
    rectify becomes offsets that the next upsamplers replicate. For Gaussian noise those lines
    are the periodic mean of the output (it is cyclostationary): synchronous averages over
    many draws give them; the multitone's grid bins agree within 0.5 dB."""
    from pathlib import Path

    from upsampcheck.config import find_config
    from upsampcheck.subjects.stack import load_stack

    full = load_stack(find_config(Path("demucs")))
    spec = parse_stack(
        {"name": "demucs3", "sample_rate": 44100 / 64, "channels": 4, "seed": full.seed,
         "layer": [{k: v for k, v in layer.describe().items() if k != "channels"}
                   for layer in full.layers[:5]]},
        "demucs3.toml",
    )  # fmt: skip
    report = check_stack(spec)
    last = report.stages[-1].measurement
    noise = sorted((ln for ln in last.lines if ln.probe == "noise"), key=lambda ln: -ln.level_db)
    assert len(noise) >= 5
    modules = build_stack(spec)
    period, edge, length = 64, 2048, 640  # output samples per fs0 period; 4 channels
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        y = torch.zeros(1, 4, length)
        for module in modules:
            y = module(y)
        usable = (y.shape[-1] - 2 * edge) // period * period
        silence = y[0, :, edge : edge + usable].double().reshape(4, -1, period).mean(1)
        total = torch.zeros(4, period, dtype=torch.float64)
        for _ in range(32):
            y = 0.1 * torch.randn(16, 4, length, generator=gen)
            for module in modules:
                y = module(y)
            total += y[:, :, edge : edge + usable].double().reshape(16, 4, -1, period).sum((0, 2))
        mean = total / (32 * 16 * usable / period) - silence
    spectrum = torch.fft.rfft(mean, dim=-1)
    power = (2 * spectrum.abs() ** 2 / period**2).mean(0).numpy()
    for line in noise[:5]:
        m = round(line.freq_hz / (spec.sample_rate / 64))
        absolute = line.level_db + 10 * math.log10(last.signal_power)
        monte_carlo = 10 * math.log10(power[m] / (2 if 2 * m == period else 1))
        assert absolute == pytest.approx(monte_carlo, abs=0.5), line.freq_hz
