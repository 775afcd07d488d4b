"""Resamplers built inside ``forward`` (julius' ``resample_frac``): found as one shape-growth
stage by torch's global module hooks, measured at the rates the chain predicts, and matched by
the closed forms of their polyphase kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.modules.module as nn_module
from oracles import dc_line_levels, image_rejection_db, response_re_band_db, subpixel_kernel
from torch import nn
from torch.nn import functional as F

from upsampcheck.api import check_model
from upsampcheck.errors import StageError
from upsampcheck.model.rates import nominal_ratio
from upsampcheck.subjects.discover import discover

POINTS = ("0.25", "0.5", "0.75", "0.9")
EXACT_DB = 0.01
# A julius-style polyphase linear interpolator: y[2n] = x[n-1], y[2n+1] = (x[n-1] + x[n]) / 2,
# i.e. zero insertion by 2 and then the triangle kernel [1/2, 1, 1/2] (one sample late).
LINEAR_PHASES = torch.tensor([[[1.0, 0.0]], [[0.5, 0.5]]])  # (phases, 1, taps)
TRIANGLE = np.array([0.5, 1.0, 0.5])


class _Polyphase2(nn.Module):
    """Built anew on every call, never a submodule: ``conv1d`` gives 2 phase channels, the
    ``transpose(1, 2).reshape`` interleaves them (``(*, T) -> (*, 2 T)``), as julius does."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", LINEAR_PHASES.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = F.pad(x.reshape(-1, 1, shape[-1]), (1, 0))
        phases = F.conv1d(flat, self.kernel)  # (N, 2, T)
        return phases.transpose(1, 2).reshape(*shape[:-1], -1)


def interpolate2(x: torch.Tensor) -> torch.Tensor:
    """Like ``julius.resample_frac(x, 1, 2)``: the module is made on the fly."""
    return _Polyphase2().to(x)(x)


class HoldThenPolyphase(nn.Module):
    """``up``: a x2 hold (transposed conv, kernel [1, 1]), then the on-the-fly interpolator.
    The root is explained by ``up``, so only a hook on the on-the-fly module finds the x2."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(1, 1, 2, 2, bias=False)
        with torch.no_grad():
            self.up.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return interpolate2(self.up(x))


class FailsOnTheFly(nn.Module):
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("bad phase count")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.Broken()(x)


def reference_band(m) -> np.ndarray:
    """The driven bins (fractions of the band) that the measurement's 1-5 % reference used."""
    fractions = m.response_curve[0]
    return fractions[(fractions >= 0.01) & (fractions <= 0.05)]


def assert_closed_forms(m, kernel: np.ndarray, fs_in: float, images_db: float) -> None:
    """Response at POINTS and first image of the zero-insertion ``kernel`` x2, DC lines none."""
    want = response_re_band_db(kernel, 2, [float(p) for p in POINTS], reference_band(m))
    assert [m.response_db[p] for p in POINTS] == pytest.approx(list(want), abs=EXACT_DB)
    images = image_rejection_db(kernel, 2, m.image_tone_hz, fs_in)
    assert m.image_rejection_db == pytest.approx(images, abs=images_db)
    assert dc_line_levels(kernel[None, None], 2, 2 * fs_in).get(fs_in, -200) < -150
    assert [ln for ln in m.lines if ln.probe == "dc"] == []


def test_an_on_the_fly_polyphase_interpolator_is_one_x2_stage_after_the_hold():
    found = discover(HoldThenPolyphase().eval(), torch.randn(1, 1, 300))
    assert [(s.name, s.kind, s.factor) for s in found.stages] == [
        ("up", "ConvTranspose1d", 2),
        ("<root>:_Polyphase2", "shape-growth", 2),
    ]
    stage = found.stages[1]
    assert (stage.in_shape, stage.out_shape) == ((1, 1, 600), (1, 1, 1200))
    x = torch.randn(3, 1, 600)
    expected = torch.stack([F.pad(x, (1, 0))[..., :-1], (F.pad(x, (1, 0))[..., :-1] + x) / 2], -1)
    torch.testing.assert_close(stage.replay(x), expected.flatten(-2))


def test_the_on_the_fly_interpolator_is_measured_at_its_rates_with_the_triangle_s_numbers():
    """32 kHz out: the hold runs 8 -> 16 kHz, the interpolator 16 -> 32 kHz; driven alone, its
    response and first image are the triangle kernel's, |H(f)| = cos^2(pi f / 32 kHz)."""
    report = check_model(HoldThenPolyphase(), sample_rate=32000, input_shape=(1, 4096))
    rates = [(s.name, s.factor, s.fs_in_hz, s.fs_out_hz) for s in report.stages]
    assert rates == [("up", 2, 8000.0, 16000.0), ("<root>:_Polyphase2", 2, 16000.0, 32000.0)]
    alone = report.stages[1].details["standalone"]
    assert_closed_forms(alone, TRIANGLE, 16000.0, EXACT_DB)
    # The closed form itself: the 0.9 point is cos^2(0.225 pi) = -4.76 dB below DC.
    assert alone.response_db["0.9"] == pytest.approx(40 * np.log10(np.cos(0.225 * np.pi)), abs=0.05)


def test_each_on_the_fly_call_gets_its_own_name_and_the_models_modules_fire_once():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mix = nn.Conv1d(1, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return interpolate2(self.mix(interpolate2(x)))

    found = discover(Twice().eval(), torch.randn(1, 1, 100))
    assert [(s.name, s.length_ratio) for s in found.stages] == [
        ("<root>:_Polyphase2", 2.0),
        ("<root>:_Polyphase2#2", 2.0),
    ]


def test_global_hooks_are_removed_also_when_an_on_the_fly_module_raises():
    before = (len(nn_module._global_forward_hooks), len(nn_module._global_forward_pre_hooks))
    with pytest.raises(StageError, match=r"'<root>:Broken' \(Broken\): ValueError: bad phase"):
        discover(FailsOnTheFly(), torch.randn(1, 1, 64))
    discover(HoldThenPolyphase(), torch.randn(1, 1, 64))
    after = (len(nn_module._global_forward_hooks), len(nn_module._global_forward_pre_hooks))
    assert after == before


def test_torchaudio_resample_built_in_forward_is_found_under_its_caller():
    torchaudio = pytest.importorskip("torchaudio")

    class OnTheFly(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torchaudio.transforms.Resample(16000, 48000)(x)

    found = discover(OnTheFly(), torch.randn(1, 1, 1000))
    assert [(s.name, s.kind, s.length_ratio) for s in found.stages] == [
        ("<root>:Resample", "shape-growth", 3.0)
    ]


# ---- julius and Demucs ----------------------------------------------------------------------


class JuliusRoundTrip(nn.Module):
    """Demucs' frame: ``resample_frac(x, 1, 2)``, a 1x1 conv at twice the rate, and
    ``resample_frac(x, 2, 1)`` back down (which halves the axis: no stage)."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Conv1d(1, 1, 1, bias=False)
        with torch.no_grad():
            self.mix.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import julius

        return julius.resample_frac(self.mix(julius.resample_frac(x, 1, 2)), 2, 1)


def test_julius_resample_frac_up_is_one_x2_stage_and_its_way_down_none():
    julius = pytest.importorskip("julius")
    found = discover(JuliusRoundTrip(), torch.randn(1, 1, 1000))
    assert [(s.name, s.kind, s.length_ratio) for s in found.stages] == [
        ("<root>:ResampleFrac", "shape-growth", 2.0)
    ]
    x = torch.randn(2, 1, 1000)
    torch.testing.assert_close(found.stages[0].replay(x), julius.resample_frac(x, 1, 2))


def test_julius_resample_is_measured_at_twice_the_output_rate_with_its_sinc_s_numbers():
    """16 kHz out: the model runs at 16 kHz, the resample 16 -> 32 kHz (the output is halved
    after it). Its two phase kernels, interleaved, are one zero-insertion kernel whose
    response and first image (about -109 dB, at the float32 floor: 0.5 dB) it measures."""
    julius = pytest.importorskip("julius")
    report = check_model(JuliusRoundTrip(), sample_rate=16000, input_shape=(1, 8192))
    rates = [(s.name, s.factor, s.fs_in_hz, s.fs_out_hz) for s in report.stages]
    assert rates == [("<root>:ResampleFrac", 2, 16000.0, 32000.0)]
    assert not [n for n in report.notes if "taken as" in n]  # output / stage = 1/2, clean
    kernel = subpixel_kernel(julius.ResampleFrac(1, 2).kernel.double().numpy(), 2)
    assert_closed_forms(report.stages[0].details["standalone"], kernel, 16000.0, 0.5)


def test_a_small_demucs_has_exact_rates_at_every_stage():
    """44.1 kHz: julius doubles the rate to 88.2 kHz, the encoder divides it by 4 per layer
    and decoder layer k's transposed conv takes fs_in = 88200 / 4^(depth - k); the last one
    runs at 88.2 kHz, twice the output rate (``resample_frac(x, 2, 1)`` halves it after)."""
    demucs = pytest.importorskip("demucs.demucs")
    torch.manual_seed(0)
    depth = 3
    model = demucs.Demucs(sources=["drums", "bass", "other", "vocals"], channels=4, depth=depth)
    report = check_model(model, sample_rate=44100, input_shape=(2, 16384))
    expected = [("<root>:ResampleFrac", 2, 44100.0)]
    expected += [(f"decoder.{k}.3", 4, 2 * 44100 / 4 ** (depth - k)) for k in range(depth)]
    got = [(s.name, s.factor, s.fs_in_hz) for s in report.stages]
    assert [g[:2] for g in got] == [e[:2] for e in expected]
    assert [g[2] for g in got] == pytest.approx([e[2] for e in expected], rel=1e-6)
    assert [s.fs_out_hz for s in report.stages][-1] == pytest.approx(88200.0, rel=1e-6)
    assert not [f for f in report.findings if "not measured" in f.message]
    assert not [n for n in report.notes if "taken as" in n]


def test_a_stage_decimated_after_by_an_integer_is_at_the_reciprocal_ratio():
    """Demucs' last decoder layer runs at twice the output rate: 16000 out of 32004 samples
    (its padding) is 1/2, clean; 1/2 within 2 % only."""
    assert nominal_ratio(16000, 32004, []) == (0.5, True)
    assert nominal_ratio(16000, 48010, [4.0]) == (1 / 3, True)
    assert nominal_ratio(16000, 30000, [])[1] is False  # 0.533: no reciprocal within 2 %
