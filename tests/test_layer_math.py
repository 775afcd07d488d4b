"""`upsampcheck layer` measurements against the formulas of docs/method.md."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from oracles import box, db, dc_line_levels, half_pixel_triangle, kernel_response_db

from upsampcheck.check import check_layer
from upsampcheck.subjects.layers import LayerSpec, build_layer

FS = 16000.0
LEVEL_TOLERANCE_DB = 0.5
RESPONSE_TOLERANCE_DB = 0.3
POINTS = (0.25, 0.5, 0.75, 0.9)


def lines_of(report, probe: str = "dc") -> dict[float, float]:
    return {
        round(line.freq_hz, 3): line.level_db
        for line in report.stages[0].measurement.lines
        if line.probe == probe
    }


def test_partial_overlap_with_constant_weights_gives_the_polyphase_lines_and_fails(device):
    report = check_layer(LayerSpec("transposed", 4, 5, bias=False, init="ones"), FS, device=device)
    expected = dc_line_levels(np.ones((1, 1, 5)), 4, FS)  # 4 kHz: -10.0 dB, 8 kHz: -13.0 dB
    assert sorted(expected) == [4000.0, 8000.0]
    measured = lines_of(report)
    assert sorted(measured) == sorted(expected)
    for freq, level in expected.items():
        assert measured[freq] == pytest.approx(level, abs=LEVEL_TOLERANCE_DB)
    assert expected[4000.0] == pytest.approx(-10.0, abs=0.01)
    assert expected[8000.0] == pytest.approx(-13.01, abs=0.01)
    assert all(line.on_grid for line in report.stages[0].measurement.lines)
    assert report.verdict == "fail" and report.exit_code == 1
    tonal = next(f for f in report.findings if f.check == "tonal")
    assert tonal.severity == "fail" and "partial overlap" in tonal.cause


def test_full_overlap_with_constant_weights_is_tone_free_and_passes(device):
    report = check_layer(LayerSpec("transposed", 4, 8, bias=False, init="ones"), FS, device=device)
    assert [line for line in report.stages[0].measurement.lines if line.level_db > -100] == []
    assert report.verdict == "pass" and report.exit_code == 0


def test_random_multichannel_transposed_lines_match_the_summed_polyphase_formula():
    spec = LayerSpec("transposed", 4, 8, channels=3, bias=False)
    report = check_layer(spec, FS, seed=7)
    weight = build_layer(spec, seed=7).weight.detach().double().numpy()
    expected = dc_line_levels(weight, 4, FS)
    measured = lines_of(report)
    assert sorted(measured) == sorted(expected)
    for freq, level in expected.items():
        assert measured[freq] == pytest.approx(level, abs=LEVEL_TOLERANCE_DB)
    tonal = next(f for f in report.findings if f.check == "tonal")
    assert "weight initialization" in tonal.cause  # length 8 is a multiple of stride 4


def assert_response_is_the_kernel(kind: str, stride: int, kernel: np.ndarray):
    """The measured response at the four points equals the kernel's, within 0.3 dB."""
    report = check_layer(LayerSpec(kind, stride, 0), FS)
    response = report.stages[0].measurement.response_db
    for point in POINTS:
        expected = kernel_response_db(kernel, stride, point)
        assert response[str(point)] == pytest.approx(expected, abs=RESPONSE_TOLERANCE_DB)
    return report


@pytest.mark.parametrize("stride", [2, 4, 8])
def test_nearest_response_is_the_box_kernel(stride):
    assert_response_is_the_kernel("nearest", stride, box(stride))


def test_box_kernel_at_the_input_nyquist_matches_design_table():
    for stride, expected in ((2, -3.01), (4, -3.70), (8, -3.87)):
        assert kernel_response_db(box(stride), stride, 1.0) == pytest.approx(expected, abs=0.01)
    for stride, expected in ((2, -6.02), (4, -7.40), (8, -7.73)):
        triangle = np.convolve(box(stride), box(stride))
        assert kernel_response_db(triangle, stride, 1.0) == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("stride", [2, 4])
def test_pytorch_linear_response_is_the_half_pixel_kernel(stride):
    report = assert_response_is_the_kernel("linear", stride, half_pixel_triangle(stride))
    if stride == 2:  # |H| = cos³(π f / fs_out): -9.03 dB at the input Nyquist
        assert kernel_response_db(half_pixel_triangle(2), 2, 1.0) == pytest.approx(-9.03, abs=0.01)
    filtering = next(f for f in report.findings if f.check == "filtering")
    assert filtering.severity == "warn"


def test_interpolators_make_no_tones_on_dc():
    for kind in ("nearest", "linear"):
        report = check_layer(LayerSpec(kind, 4, 0), FS)
        assert report.stages[0].measurement.lines == []


def test_zero_insertion_leaves_images_unattenuated():
    report = check_layer(LayerSpec("stretch", 2, 0), FS)
    assert report.stages[0].measurement.image_rejection_db == pytest.approx(0.0, abs=0.05)
    replicas = next(f for f in report.findings if f.check == "replicas")
    assert replicas.severity == "warn"


def test_nearest_image_rejection_is_the_box_response_at_the_image():
    # tone at fs_in/8, image at 7 fs_in/8: cos(7π/16) / cos(π/16) = -13.97 dB for stride 2
    report = check_layer(LayerSpec("nearest", 2, 0), FS)
    expected = db(math.cos(7 * math.pi / 16) / math.cos(math.pi / 16))
    assert report.stages[0].measurement.image_rejection_db == pytest.approx(expected, abs=0.3)


def test_subpixel_with_icnr_is_tone_free_and_default_init_is_not():
    icnr = check_layer(LayerSpec("subpixel", 2, 3, bias=False, init="icnr"), FS)
    assert icnr.stages[0].measurement.lines == []
    assert next(f for f in icnr.findings if f.check == "tonal").severity == "pass"
    default = check_layer(LayerSpec("subpixel", 2, 3, bias=False), FS)
    lines = default.stages[0].measurement.lines
    assert [round(line.freq_hz) for line in lines] == [8000]
    assert lines[0].level_db > -40 and default.verdict == "fail"


def test_transposed_bias_gives_the_predicted_offset_under_silence():
    spec = LayerSpec("transposed", 4, 8, bias=True)
    layer = build_layer(spec, seed=3)
    report = check_layer(spec, FS, seed=3)
    weight = layer.weight.detach().double()
    noise_gain = math.sqrt(weight.pow(2).sum().item() / 4)
    expected = db(abs(layer.bias.item()) / (0.1 * noise_gain))  # probes have RMS 0.1
    assert report.stages[0].measurement.dc_db == pytest.approx(expected, abs=0.2)


def test_untied_subpixel_bias_makes_lines_under_silence():
    spec = LayerSpec("subpixel", 2, 3, bias=True, init="icnr")
    tied = check_layer(spec, FS)
    assert tied.stages[0].measurement.lines == []
    untied = check_layer(LayerSpec("subpixel", 2, 3, bias=True), FS)
    assert "silence" in {line.probe for line in untied.stages[0].measurement.lines}


def test_same_seed_gives_the_same_report_and_another_seed_does_not():
    spec = LayerSpec("transposed", 4, 5)
    first = check_layer(spec, FS, seed=1).to_json()
    again = check_layer(spec, FS, seed=1).to_json()
    other = check_layer(spec, FS, seed=2).to_json()
    assert first == again
    assert first["stages"] != other["stages"]


def test_float32_residue_is_never_reported_as_a_line():
    # nearest x4 then a constant conv: numerically exact zeros at every m·fs_in
    report = check_layer(LayerSpec("nearest", 4, 4, bias=False, init="ones"), FS)
    assert report.stages[0].measurement.lines == []
    assert torch.finfo(torch.float32).eps > 1e-8  # residue would sit near -140 dB
