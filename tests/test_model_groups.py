"""Identical stages driven alone once, rates exact at and above the output rate (issue 10),
on the alias-free fixtures of :mod:`aliasfree`: one Kaiser-sinc kernel run in many places."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from upsampcheck.model import stages as model_stages
from upsampcheck.model.check import ModelOptions, check_model
from upsampcheck.subjects.loading import LoadedModel

try:
    import aliasfree as af
    from oracles import image_rejection_db
except ImportError:  # tests/ run as a package
    from tests import aliasfree as af
    from tests.oracles import image_rejection_db

pytestmark = pytest.mark.xdist_group("aliasfree")  # one worker runs the 77-stage check

FS = 22050.0


class SharedFilterChain(nn.Module):
    """``up`` ConvTranspose1d x2 (2 channels), then five anti-aliased activations at the output
    rate: five ``conv_transpose1d`` x2 stages with one kernel, then one with another kernel."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(2, 2, 4, stride=2, padding=1)
        self.acts = nn.ModuleList(af.AntiAliasAct(af.kaiser_sinc()) for _ in range(5))
        self.odd = af.AntiAliasAct(af.kaiser_sinc(cutoff=0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        for act in self.acts:
            x = act(x)
        return self.odd(x)


@pytest.fixture(scope="module")
def chain(request):
    calls = []
    real = model_stages.measure_alone
    patch = pytest.MonkeyPatch()
    patch.setattr(
        model_stages, "measure_alone", lambda stage, *a: calls.append(stage.name) or real(stage, *a)
    )
    torch.manual_seed(0)
    model = SharedFilterChain().eval()
    report = check_model(
        LoadedModel(model, "module"), ModelOptions(sample_rate=FS, input_shape=(2, 1024))
    )
    patch.undo()
    return report, calls


def test_identical_filters_are_driven_alone_once_and_listed_as_one_group(chain):
    report, calls = chain
    names = [s.name for s in report.stages]
    same = [f"acts.{i}.up:conv_transpose1d" for i in range(5)]
    assert names == ["up", *same, "odd.up:conv_transpose1d"]
    assert calls == ["up", same[0], "odd.up:conv_transpose1d"]  # 3 distinct of 7
    for stage in report.stages[1:6]:
        assert stage.details["identical_stages"] == same
        assert stage.details["standalone"] is report.stages[1].details["standalone"]
    assert "identical_stages" not in report.stages[6].details  # another kernel: its own drive


def test_grouped_standalone_drive_matches_the_kernel_image_rejection_formula(chain):
    report, _ = chain
    kernel = af.kaiser_sinc().double().numpy().ravel()
    for stage in report.stages[1:6]:
        alone = stage.details["standalone"]
        expected = image_rejection_db(kernel, 2, alone.image_tone_hz, alone.fs_in)
        assert alone.image_rejection_db == pytest.approx(expected, abs=0.01)
    # the in-model taps differ (each sees its own input) and are measured one by one
    gains = [s.measurement.noise_gain_db for s in report.stages[1:6]]
    assert len(set(gains)) == 5


def test_measured_inside_the_pass_on_each_device_with_the_kernel_formula(device):
    """The probes, the in-pass folding and DFTs and the standalone drive run where the model
    is (``--device cuda`` on a GPU); the numbers do not depend on it."""
    torch.manual_seed(0)
    report = check_model(
        LoadedModel(SharedFilterChain().eval(), "module"),
        ModelOptions(sample_rate=FS, input_shape=(2, 1024), device=device),
    )
    assert report.device.startswith(device)
    kernel = af.kaiser_sinc().double().numpy().ravel()
    alone = report.stages[1].details["standalone"]
    expected = image_rejection_db(kernel, 2, alone.image_tone_hz, alone.fs_in)
    assert alone.image_rejection_db == pytest.approx(expected, abs=0.01)
    assert [s.fs_in_hz for s in report.stages] == [FS / 2] + [FS] * 6


def test_stages_at_the_output_rate_get_exact_rates_without_a_note(chain):
    report, _ = chain
    for stage in report.stages[1:]:
        assert stage.fs_in_hz == FS  # the x2 before a /2: input at the output rate exactly
        assert stage.fs_out_hz == 2 * FS
    assert report.stages[0].fs_in_hz == FS / 2 and report.stages[0].fs_out_hz == FS
    assert not [n for n in report.notes if "taken as" in n]


def test_bigvgan_like_vocoder_has_77_stages_at_exact_rates_in_five_drives(aliasfree_run):
    report, calls = aliasfree_run["report"], aliasfree_run["calls"]
    assert len(report["stages"]) == 77
    # 4 ConvTranspose1d and one drive per block's anti-aliasing rate (the last block and
    # act_post share the output rate and width)
    assert len(calls) == 4 + 4
    rates = {s["fs_in_hz"] for s in report["stages"] if s["name"].endswith("up:conv_transpose1d")}
    assert rates == {FS / 32, FS / 4, FS / 2, FS}
    for stage in report["stages"]:  # report.json keeps rates to 4 decimals
        assert stage["fs_in_hz"] * stage["factor"] == pytest.approx(stage["fs_out_hz"], abs=1e-3)
        octaves = np.log2(FS / stage["fs_in_hz"])  # the output rate times 2^k exactly
        assert octaves == pytest.approx(round(octaves), abs=1e-6)
    assert not [n for n in report["notes"] if "taken as" in n]


def test_demucs_deep_stages_get_exact_rates_from_how_much_they_grow():
    """Demucs pads its input to a valid length, so at depth a stage's length is far from its
    rate (ratios 7.1 and 1.7 where 4^k is due): the rates come from each stage's growth between
    two discovery passes, and all six decoder layers run at 2 fs / 4^(6-k) exactly."""
    demucs = pytest.importorskip("demucs.demucs")
    torch.manual_seed(0)
    model = demucs.Demucs(sources=["drums", "bass"], channels=4, depth=6).eval()
    report = check_model(LoadedModel(model, "module"), ModelOptions(sample_rate=44100.0))
    rates = {s.name: (s.fs_in_hz, s.fs_out_hz) for s in report.stages}
    assert rates.pop("<root>:ResampleFrac") == (44100.0, 88200.0)
    assert rates == {
        f"decoder.{k}.3": (88200 / 4 ** (6 - k), 88200 / 4 ** (5 - k)) for k in range(6)
    }
    assert not [f for f in report.findings if f.check == "discovery"]
    assert not [n for n in report.notes if "taken as" in n]


def test_discovery_runs_on_a_short_input_and_finds_the_rates_of_the_full_one(monkeypatch):
    """Discovery needs the graph, not the length: an inferred shape is discovered at
    SHORT_FRAMES frames (a quarter of the pass's cost or less), with the very rates,
    factors and lines that discovery at the full length gives."""
    from upsampcheck.model import discovery

    try:
        from model_fixtures import TransposedStack
    except ImportError:
        from tests.model_fixtures import TransposedStack

    def report():
        torch.manual_seed(0)
        loaded = LoadedModel(TransposedStack().eval(), "module")
        return check_model(loaded, ModelOptions(sample_rate=16000.0))

    short, frames = report(), discovery.SHORT_FRAMES
    monkeypatch.setattr(discovery, "SHORT_FRAMES", 10**9)  # never shorter: the full length
    full = report()
    assert [s.details["in_shape"][-1] for s in short.stages] == [frames, 2 * frames]
    full_frames = discovery.DISCOVERY_FRAMES
    assert [s.details["in_shape"][-1] for s in full.stages] == [full_frames, 2 * full_frames]
    for a, b in zip(short.stages, full.stages, strict=True):
        assert (a.name, a.factor, a.fs_in_hz) == (b.name, b.factor, b.fs_in_hz)
        assert [(ln.freq_hz, ln.level_db) for ln in a.measurement.lines] == [
            (ln.freq_hz, ln.level_db) for ln in b.measurement.lines
        ]
    assert [(s.fs_in_hz, s.factor) for s in short.stages] == [(2000.0, 2), (4000.0, 4)]
