"""Stacks from TOML specs: the talk's experiments reproduced, lines traced to their stages."""

from __future__ import annotations

import math

import numpy as np
import pytest
from oracles import dc_line_levels, half_pixel_triangle, kernel_response_db

from upsampcheck.check import check_stack
from upsampcheck.config import find_config, shipped_configs
from upsampcheck.subjects.stack import build_stack, load_stack, parse_stack

PAPER = [name for name in shipped_configs() if name.startswith("paper/")]


def run(name: str):
    spec = load_stack(find_config(__import__("pathlib").Path(name)))
    return spec, check_stack(spec)


def output_lines(report, floor_db: float = -100.0):
    lines = report.output_lines if report.output_lines is not None else report.stages[0].own_lines
    return [line for line in lines if line.level_db > floor_db]


def on_multiple(freq: float, base: float) -> bool:
    return abs(freq / base - round(freq / base)) < 1e-3


def tonal(report, stage: str):
    return next(f for f in report.findings if f.check == "tonal" and f.stage == stage)


def test_every_paper_config_parses_and_says_what_the_talk_reports():
    assert len(PAPER) == 14
    for name in PAPER:
        spec = load_stack(shipped_configs()[name])
        assert spec.description.startswith(("Fig.", "MelGAN", "Demucs")), name


@pytest.mark.parametrize("stride", [4, 6])
def test_fig5_constant_weights_follow_the_polyphase_formula(stride):
    spec, report = run(f"fig5_stride{stride}_ones")
    weight = build_stack(spec)[0].weight.detach().double().numpy()
    expected = dc_line_levels(weight, stride, 4000.0 * stride)
    measured = {round(ln.freq_hz, 2): ln.level_db for ln in output_lines(report)}
    if stride == 4:  # full overlap, equal polyphase sums: no line at all
        assert expected == {} and measured == {} and report.verdict == "pass"
    else:  # partial overlap: sums [2, 2, 1, 1, 1, 1]; W_3 = 0, so 4 and 8 kHz but not 12 kHz
        assert sorted(measured) == sorted(expected) == [4000.0, 8000.0]
        for freq, level in expected.items():
            assert measured[freq] == pytest.approx(level, abs=0.5)
        assert report.verdict == "fail"


@pytest.mark.parametrize("stride", [4, 6])
def test_fig5_random_weights_make_lines_on_the_4khz_grid_whatever_the_overlap(stride):
    spec, report = run(f"fig5_stride{stride}_random")
    lines = output_lines(report)
    weight = build_stack(spec)[0].weight.detach().double().numpy()
    expected = dc_line_levels(weight, stride, 4000.0 * stride)
    assert {round(ln.freq_hz) for ln in lines} == {round(f) for f in expected}
    assert all(on_multiple(ln.freq_hz, 4000) for ln in lines)
    assert report.verdict == "fail"


@pytest.mark.parametrize("name", ["fig6_nearest", "fig6_linear", "fig8_linear"])
def test_interpolation_stacks_have_no_lines_but_droop(name):
    _, report = run(name)
    assert output_lines(report, floor_db=-110) == []
    assert all(tonal(report, stage.name).severity == "pass" for stage in report.stages)
    assert any(f.check == "filtering" and f.severity == "warn" for f in report.findings)
    assert report.verdict == "pass"


def test_fig8_linear_each_stage_droops_like_the_half_pixel_kernel():
    _, report = run("fig8_linear")
    for stage in report.stages:
        for point, measured in stage.measurement.response_db.items():
            expected = kernel_response_db(half_pixel_triangle(2), 2, float(point))
            assert measured == pytest.approx(expected, abs=0.3), (stage.name, point)


def test_fig8_transposed_lines_sit_at_4_8_12_16_khz_and_nowhere_else():
    _, report = run("fig8_transposed")
    freqs = {round(line.freq_hz, 1) for line in output_lines(report, floor_db=-100)}
    assert freqs == {4000.0, 8000.0, 12000.0, 16000.0}
    origin = {round(ln.freq_hz): ln.origin for ln in output_lines(report) if ln.probe == "dc"}
    # each stage makes a line at its own input rate; stage 3 replicates 4 kHz to 16 - 4 = 12 kHz
    assert origin == {
        4000: "1:transposed",
        8000: "2:transposed",
        12000: "1:transposed",
        16000: "3:transposed",
    }
    assert report.verdict == "fail"


def test_fig7_subpixel_lines_lie_on_the_stage_grids():
    _, report = run("fig7_subpixel")
    lines = output_lines(report)
    assert lines and all(on_multiple(line.freq_hz, 4000) for line in lines)
    assert report.verdict == "fail"


def test_melgan_lines_lie_on_86hz_and_each_comes_from_a_stage_whose_rate_divides_it():
    _, report = run("melgan")
    assert [round(s.fs_in_hz, 2) for s in report.stages] == [86.13, 689.06, 5512.5, 11025.0]
    rates = {stage.name: stage.fs_in_hz for stage in report.stages}
    strongest = sorted(output_lines(report), key=lambda ln: -ln.level_db)[:20]
    assert len(strongest) == 20
    for line in strongest:
        multiple = line.freq_hz / (22050 / 256)
        assert multiple == pytest.approx(round(multiple), abs=0.01), line
        ratio = line.freq_hz / rates[line.origin]
        assert ratio == pytest.approx(round(ratio), abs=0.01), line
    assert report.verdict == "fail"


def test_demucs_without_biases_has_lower_lines_than_the_original(capsys):
    _, original = run("demucs")
    _, modified = run("demucs_modified")
    worst = [max(ln.level_db for ln in output_lines(r)) for r in (original, modified)]
    with capsys.disabled():
        print(f"\n  demucs: loudest line {worst[0]:.1f} dB; demucs_modified: {worst[1]:.1f} dB")
    assert worst[1] < worst[0] - 20
    assert [round(s.fs_in_hz, 2) for s in original.stages] == [
        round(44100 / 4**k, 2) for k in range(6, 0, -1)
    ]


def test_demucs_variants_subpixel_makes_offset_tones_nearest_only_rectification_lines():
    """Nearest + conv replicates no offset (zeros at every m·fs_in): silence and DC leave no line
    above the floor. What its ReLUs rectify of the (cyclostationary) signal is periodic, though:
    the multitone shows those lines exactly (tests/test_exact.py checks them by Monte-Carlo)."""
    _, subpixel = run("demucs_subpixel")
    assert subpixel.verdict == "fail"
    assert {ln.probe for ln in output_lines(subpixel)} >= {"silence", "dc"}
    _, nearest = run("demucs_nearest")
    lines = output_lines(nearest, floor_db=-110)
    assert [ln for ln in lines if ln.probe != "noise"] == []
    assert lines and all(on_multiple(ln.freq_hz, 44100 / 4**6) for ln in lines)


def test_a_bias_before_the_last_upsampler_is_traced_to_the_line_it_becomes():
    spec = parse_stack(
        {
            "name": "late-bias",
            "sample_rate": 16000,
            "seed": 1,
            "layer": [
                {"type": "transposed", "stride": 2, "length": 4, "bias": False},
                {"type": "conv", "length": 3, "bias": True},
                {"type": "transposed", "stride": 2, "length": 3, "bias": False},
            ],
        },
        "late-bias.toml",
    )
    report = check_stack(spec)
    first, last = report.stages
    assert [ln for ln in first.measurement.lines if ln.probe == "silence"] == []
    assert first.measurement.dc_db < -150  # no bias of its own
    silence = [ln for ln in last.measurement.lines if ln.probe == "silence"]
    assert [round(ln.freq_hz) for ln in silence] == [8000]  # fs_in of the last stage
    assert silence[0].origin == last.name
    trace = next(f for f in report.findings if f.check == "offset" and "entering" in f.message)
    assert trace.stage == last.name and "the bias of the conv after 1:transposed" in trace.message
    assert "8000 Hz" in trace.message and f"made by {last.name}" in trace.message
    assert last.measurement.input_dc_db == pytest.approx(trace_offset(spec), abs=0.5)


def trace_offset(spec) -> float:
    """The conv's bias relative to the noise that reaches it (docs/method.md's signal level)."""
    import torch

    from upsampcheck.measure.probes import make_probes

    modules = build_stack(spec)
    probes = make_probes(4096, 4000.0, seed=spec.seed)
    with torch.no_grad():
        x = modules[1](modules[0](probes.signals))
    noise = x[0] - x[1]
    inner = noise[..., 64:-64]
    return 20 * math.log10(abs(modules[1].bias.item()) / inner.pow(2).mean().sqrt().item())


BAD_SPECS = {
    "unknown key": (
        'sample_rate = 16000\n[[layer]]\ntype = "transposed"\nstride = 2\nstrides = 3\n',
        "layer 1: unknown key 'strides'",
    ),
    "stride 0": (
        'sample_rate = 16000\n[[layer]]\ntype = "transposed"\nstride = 0\n',
        "layer 1: key 'stride'",
    ),
    "missing layers": ('sample_rate = 16000\nname = "x"\n', "no [[layer]] tables"),
    "wrong type": ('sample_rate = "fast"\n[[layer]]\ntype = "relu"\n', "key 'sample_rate'"),
    "only blocks": ('sample_rate = 16000\n[[layer]]\ntype = "relu"\n', "no upsampling layer"),
    "unknown top key": ("sample_rate = 16000\nrate = 3\n", "unknown key 'rate'"),
    "not toml": ("sample_rate = = 1\n", "not valid TOML"),
}


@pytest.mark.parametrize("text,expected", BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_a_malformed_spec_exits_2_naming_the_file_and_key(cli, tmp_path, text, expected):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    result = cli("layer", "--config", str(path), out=tmp_path / "r")
    assert result.code == 2
    assert result.err.count("\n") == 1 and str(path) in result.err and expected in result.err
    assert not (tmp_path / "r").exists()


def test_list_configs_shows_every_shipped_spec(cli):
    result = cli("layer", "--list-configs")
    assert result.code == 0
    for name in PAPER:
        assert name.split("/")[1][:12] in result.out


def test_a_shipped_config_runs_by_name_and_writes_a_row_per_stage(cli, tmp_path):
    result = cli("layer", "--config", "fig8_transposed", "--format", "json", out=tmp_path / "r")
    report = result.json()
    assert result.code == 1 and report["subject"]["name"] == "fig8_transposed"
    assert [s["fs_in_hz"] for s in report["stages"]] == [4000.0, 8000.0, 16000.0]
    assert {ln["introduced_by"] for ln in report["output"]["lines"]} == {
        "1:transposed",
        "2:transposed",
        "3:transposed",
    }
    assert all("standalone" in s for s in report["stages"])
    pngs = sorted(p.name for p in (tmp_path / "r").glob("[0-9]_transposed_*.png"))
    assert len(pngs) == 3 * 5 and (tmp_path / "r" / "summary.png").exists()
    assert np.isfinite([s["noise_gain_db"] for s in report["stages"]]).all()
