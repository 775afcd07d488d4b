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

from upsampcheck import bounds
from upsampcheck.errors import UsageError
from upsampcheck.model import check, shapes
from upsampcheck.model.shapes import Candidate, ShapeSearch
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
    assert stages_of(report) == [("pqmf:conv_transpose1d", 2, 8000.0)]


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


# ---- shape inference from what the model says -----------------------------------------------


class NoiseFirst(nn.Module):
    """RVC's layout: a 1-channel noise conv registered before the 192-channel ``conv_pre`` the
    input goes through; the noise conv runs on noise the model makes itself (zeros here)."""

    def __init__(self) -> None:
        super().__init__()
        self.noise_conv = nn.Conv1d(1, 8, 7, padding=3)
        self.conv_pre = nn.Conv1d(192, 8, 7, padding=3)
        self.up = nn.ConvTranspose1d(8, 1, 8, stride=4, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise = x.new_zeros(x.shape[0], 1, x.shape[-1])
        return self.up(self.conv_pre(x) + self.noise_conv(noise))


def test_a_noise_conv_registered_first_does_not_hide_conv_pre(cli):
    report = run_json(cli, "--arch", f"{ARCH}:NoiseFirst")
    assert stages_of(report) == [("up", 4, 4000.0)]
    assert report["stages"][0]["fs_out_hz"] == 16000.0
    assert report["subject"]["input_shape"][0] == 192
    assert (
        "input shape 192,256 found by trying candidates (refused: 1,256); 192 channels named "
        "in the model's error; pass --input-shape to be sure"
    ) in report["notes"]


class LongKernel(nn.Module):
    """A learned filter bank as DCUNet's STFT encoder: kernel 1024, hop 256, then back."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Conv1d(1, 8, 1024, stride=256)
        self.decoder = nn.ConvTranspose1d(8, 1, 512, stride=256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.tanh(self.encoder(x)))


def test_a_kernel_longer_than_the_default_length_lengthens_the_input(cli):
    report = run_json(cli, "--arch", f"{ARCH}:LongKernel")
    assert stages_of(report) == [("decoder", 256, 62.5)]
    assert report["subject"]["input_shape"][-1] % 256 == 0
    assert (
        "input shape inferred from the first conv: 1 channel(s); length 1024: the longest "
        "kernel spans 1024"
    ) in report["notes"]


class Multiple88(nn.Module):
    """StyleMelGAN's check: the input length must be a multiple of 88."""

    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Conv1d(2, 4, 3, padding=1)
        self.up = nn.ConvTranspose1d(4, 1, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 88:
            raise ValueError("input length must be a multiple of 88")
        return self.up(self.pre(x))


def test_a_multiple_the_model_s_error_names_is_kept_to_the_probe(cli):
    report = run_json(cli, "--arch", f"{ARCH}:Multiple88")
    assert stages_of(report) == [("up", 2, 8000.0)]
    assert report["subject"]["input_shape"][0] == 2
    assert report["subject"]["input_shape"][-1] % 88 == 0
    assert (
        "input shape 2,264 found by trying candidates (refused: 2,256); length 264: a multiple "
        "of 88, as the model's error asks; pass --input-shape to be sure"
    ) in report["notes"]


class Latent512(nn.Module):
    """Mimi's decode path: the latent goes through a Conv1d(512, ...) registered after the
    decoder's own convs, and reaches it only after a reshape (the leading dims flattened), so
    the first conv's width (16) is a wrong guess; the error names the 512 it wants."""

    def __init__(self) -> None:
        super().__init__()
        self.decoder = nn.Sequential(
            nn.Conv1d(16, 32, 3, padding=1),
            nn.ConvTranspose1d(32, 8, 4, stride=2, padding=1),
            nn.Conv1d(8, 1, 3, padding=1),
        )
        self.upsample = nn.ConvTranspose1d(24, 16, 4, stride=2, padding=1, groups=8)
        self.project = nn.Conv1d(512, 24, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1, z.shape[-1])
        return self.decoder(self.upsample(self.project(z)))


def test_channels_the_model_s_error_names_are_tried_next(cli):
    report = run_json(cli, "--arch", f"{ARCH}:Latent512", "--sample-rate", "24000")
    assert stages_of(report) == [("upsample", 2, 6000.0), ("decoder.1", 2, 12000.0)]
    assert report["subject"]["input_shape"][0] == 512
    assert (
        "input shape 512,256 found by trying candidates (refused: 16,256); 512 channels named "
        "in the model's error; pass --input-shape to be sure"
    ) in report["notes"]


@pytest.mark.parametrize(
    ("message", "shape"),
    [
        ("Calculated padded input size per channel: (64). Kernel size: (1024). Kernel size "
         "can't be greater than actual input size", (1, 4096)),
        ("Argument #4: Padding size should be less than the corresponding input dimension, but "
         "got: padding (512, 512) at dimension 2 of input [1, 1, 256]", (1, 513)),
        ("stft(torch.FloatTensor[1, 256], n_fft=1024, hop_length=256) : expected 0 < n_fft < "
         "256, but got n_fft=1024", (1, 1024)),
        ("maximum size for tensor at dimension 2 is 128 but size is 1024", (1, 2048)),
        ("Given groups=1, weight of size [64, 512, 7], expected input[1, 1, 256] to have 512 "
         "channels, but got 1 channels instead", (512, 256)),
        ("Expected weight to be a vector of size equal to the number of channels in input, but "
         "got weight of shape [80] and input of shape [1, 1, 256]", (80, 256)),
        ("ValueError: input length must be divisible by 300", (1, 300)),
    ],
)  # fmt: skip
def test_what_a_refusal_names_is_the_next_candidate(message, shape):
    search = ShapeSearch(NoneEval(), Candidate((1, 256)))
    tried = next(iter(search))
    search.refused(tried, f"model failed in 'x' (Conv1d): RuntimeError: {message}")
    assert next(iter(search)).shape == shape


def test_the_search_stops_at_its_time_limit_and_says_so(cli, monkeypatch):
    monkeypatch.setattr(shapes, "SEARCH_SECONDS", 0.0)
    result = cli("model", "--arch", f"{ARCH}:NoiseFirst", "--no-plots")
    one_line_error(result, "refused every candidate (1,256); stopped after 0 s", "192 channels")


def memory_for(monkeypatch, available: float) -> None:
    """Each probe sample costs 1 MB; ``available`` bytes are free."""
    monkeypatch.setattr(
        check, "model_memory", lambda found, stages, length, frames, *_: frames * 1e6
    )
    monkeypatch.setattr(bounds, "available_memory", lambda: int(available))


def test_an_inferred_shape_too_long_for_memory_is_shortened_not_refused(cli, monkeypatch):
    memory_for(monkeypatch, 1000e6 / bounds.MEMORY_SHARE)  # up to 1000 samples
    report = run_json(cli, "--arch", f"{ARCH}:NoneEval")
    assert report["subject"]["input_shape"] == [1, 512]
    assert stages_of(report) == [("up", 4, 4000.0)]
    assert (
        "input length 512 samples, the shortest probe the stages allow: the longer default would "
        "need about 15.3 GiB of memory; pass --input-shape to choose"
    ) in report["notes"]


def test_an_inferred_shape_that_cannot_fit_names_the_shape(cli, monkeypatch):
    memory_for(monkeypatch, 100e6 / bounds.MEMORY_SHARE)
    result = cli("model", "--arch", f"{ARCH}:NoneEval", "--no-plots")
    one_line_error(result, "would need about 488 MiB", "at the inferred input shape 1,512")
    given = cli("model", "--arch", f"{ARCH}:NoneEval", "--input-shape", "1,4096")
    one_line_error(given, "would need about 3.8 GiB", "shorten --input-shape's time axis")
    # a given length the stages lengthen: the refusal says so, not to shorten it further
    short = cli("model", "--arch", f"{ARCH}:NoneEval", "--input-shape", "1,100")
    one_line_error(
        short,
        "the stages' rates ask for 512 input samples (4 periods of 128) where 100 were given",
    )
