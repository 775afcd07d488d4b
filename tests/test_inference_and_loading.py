"""Every architecture with no flags: the input shape found from what the model says (every
conv's width, the channels and lengths its own errors name, kernels longer than the input),
and checkpoints loaded as projects write them (an ``eval()`` that returns None, filter banks
built in the constructor and left out of the file, a generator's weights beside its
discriminator's). The small stand-in models below are built by ``--arch
test_inference_and_loading:NAME``."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from upsampcheck.errors import UsageError
from upsampcheck.subjects.loading import load_model

ARCH = "test_inference_and_loading"


def seeded(build, seed: int = 5) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    model.eval()  # NoneEval's returns None
    return model


def one_line_error(result, *expected: str) -> str:
    assert result.code == 2, result.err
    assert result.err.count("\n") == 1 and result.err.startswith("upsampcheck: error: ")
    assert "Traceback" not in result.err
    for text in expected:
        assert text in result.err, result.err
    return result.err


def run_json(cli, *args: str):
    result = cli("model", *args, "--no-plots", "--format", "json")
    assert result.code in (0, 1), result.err
    return result.json()


def stages_of(report: dict) -> list[tuple[str, float, float]]:
    return [(s["name"], s["factor"], s["fs_in_hz"]) for s in report["stages"]]


# ---- loading as projects write it -----------------------------------------------------------


class NoneEval(nn.Module):
    """A project's ``eval()`` that sets the mode and returns None."""

    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Conv1d(1, 4, 3, padding=1)
        self.up = nn.ConvTranspose1d(4, 1, 8, stride=4, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.pre(x))

    def eval(self):  # noqa: D102 - as some projects write it
        super().eval()
        return None


def test_an_eval_that_returns_none_loads_and_runs(cli, tmp_path):
    model = seeded(NoneEval)
    torch.save(model.state_dict(), tmp_path / "g.pt")
    fresh = load_model(None, f"{ARCH}:NoneEval")
    assert isinstance(fresh.module, NoneEval) and not fresh.module.training
    report = run_json(cli, str(tmp_path / "g.pt"), "--arch", f"{ARCH}:NoneEval")
    assert stages_of(report) == [("up", 4, 4000.0)]
    report = run_json(cli, "--arch", f"{ARCH}:NoneEval", "--sample-rate", "8000")
    assert stages_of(report) == [("up", 4, 2000.0)]


def pqmf_filters(taps: int = 8, bands: int = 2) -> torch.Tensor:
    """A cosine-modulated bank ``(bands, 1, taps)``: what a PQMF computes in its constructor."""
    n = torch.arange(taps, dtype=torch.float32) - (taps - 1) / 2
    k = torch.arange(bands, dtype=torch.float32)[:, None]
    window = torch.hann_window(taps, periodic=False)
    return (window * torch.cos(math.pi / bands * (k + 0.5) * n))[:, None, :]


class PQMF(nn.Module):
    """Filter banks registered as buffers in the constructor, as ParallelWaveGAN's PQMF."""

    def __init__(self, bands: int = 2) -> None:
        super().__init__()
        self.bands = bands
        self.register_buffer("analysis_filter", pqmf_filters(8, bands))
        self.register_buffer("synthesis_filter", pqmf_filters(8, bands).flip(-1))
        self.register_buffer("updown_filter", torch.eye(bands)[:, :, None])

    def synthesis(self, x: torch.Tensor) -> torch.Tensor:
        up = F.conv_transpose1d(x, self.updown_filter * self.bands, stride=self.bands)
        return F.conv1d(up, self.synthesis_filter.transpose(0, 1).flip(1), padding=3)


class MultiBand(nn.Module):
    """``conv`` to two bands, then the PQMF synthesis (x2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3, padding=1)
        self.norm = nn.BatchNorm1d(2)
        self.pqmf = PQMF(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pqmf.synthesis(self.norm(self.conv(x)))


def test_buffers_the_constructor_built_are_kept_when_the_checkpoint_lacks_them(cli, tmp_path):
    model = seeded(MultiBand)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("pqmf.")}
    torch.save({"generator": state}, tmp_path / "g.pt")
    loaded = load_model(tmp_path / "g.pt", f"{ARCH}:MultiBand")
    (note,) = [n for n in loaded.notes if n.startswith("kept ")]
    assert note == (
        "kept 3 buffers from --arch's constructor (absent from the checkpoint): "
        "pqmf.analysis_filter, pqmf.synthesis_filter, pqmf.updown_filter"
    )
    x = torch.randn(1, 1, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded.module(x), model(x))
    report = run_json(cli, str(tmp_path / "g.pt"), "--arch", f"{ARCH}:MultiBand")
    assert note in report["notes"]
    assert stages_of(report) == [("<root>:conv_transpose1d", 2, 8000.0)]


def test_a_checkpoint_missing_a_parameter_or_running_statistics_is_still_refused(cli, tmp_path):
    model = seeded(MultiBand)
    for gone in ("conv.bias", "norm.running_var"):
        state = {k: v for k, v in model.state_dict().items() if k != gone}
        torch.save(state, tmp_path / "g.pt")
        result = cli("model", str(tmp_path / "g.pt"), "--arch", f"{ARCH}:MultiBand")
        one_line_error(result, "does not fit --arch", f"1 missing keys ({gone})")


class Discriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(1, 4, 5), nn.Conv1d(4, 1, 3)])


def test_the_only_sub_dict_that_fits_the_arch_is_chosen_without_weights(cli, tmp_path):
    gen, disc = seeded(NoneEval), seeded(Discriminator)
    optim = torch.optim.Adam(gen.parameters()).state_dict()
    doc = {"model_g": gen.state_dict(), "model_d": disc.state_dict(), "optim_g": optim}
    torch.save(doc, tmp_path / "ck.pt")
    loaded = load_model(tmp_path / "ck.pt", f"{ARCH}:NoneEval")
    assert "using checkpoint['model_g']" in loaded.notes
    assert (
        "chose 'model_g': the only state dict in the checkpoint that fits --arch "
        "(also there: 'model_d'); pick with --weights KEY"
    ) in loaded.notes
    x = torch.randn(1, 1, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded.module(x), gen(x))
    report = run_json(cli, str(tmp_path / "ck.pt"), "--arch", f"{ARCH}:NoneEval")
    assert "using checkpoint['model_g']" in report["notes"]
    assert stages_of(report) == [("up", 4, 4000.0)]


def test_two_sub_dicts_that_fit_still_need_weights_and_both_are_named(cli, tmp_path):
    gen, other = seeded(NoneEval), seeded(NoneEval, seed=6)
    doc = {"model_g": gen.state_dict(), "model_g2": other.state_dict(), "step": 3}
    torch.save({**doc, "model_d": seeded(Discriminator).state_dict()}, tmp_path / "ck.pt")
    with pytest.raises(UsageError, match=r"\('model_g', 'model_g2', all fitting --arch\)"):
        load_model(tmp_path / "ck.pt", f"{ARCH}:NoneEval")
    result = cli("model", str(tmp_path / "ck.pt"), "--arch", f"{ARCH}:NoneEval")
    one_line_error(result, "'model_g', 'model_g2'", "--weights KEY")
    assert "model_d" not in result.err
    chosen = load_model(tmp_path / "ck.pt", f"{ARCH}:NoneEval", weights="model_g2")
    assert torch.equal(chosen.module.up.weight, other.up.weight)
