"""Models that grow a path of their own beside the input's (StyleMelGAN's noise upsampler,
a ParallelWaveGAN wrapper's ``z = 0``), the memory a model's own forward takes, and the lines
a long run writes off a terminal. Stand-ins are built by ``--arch
test_noise_paths_and_memory:NAME``."""

from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from upsampcheck import bounds
from upsampcheck.cli.options import StepLines
from upsampcheck.model import check, footprint, short_passes
from upsampcheck.model.footprint import forward_peak

ARCH = "test_noise_paths_and_memory"


def run_json(cli, *args: str) -> dict:
    result = cli("model", *args, "--no-plots", "--format", "json")
    assert result.code in (0, 1), result.err
    return result.json()


class NoisePath(nn.Module):
    """StyleMelGAN's shape: ``z`` (zeros, one frame per 88 mel frames) grown x11, x2, x2, x2
    by transposed convs to the mel's length, then both paths upsampled x2 together. The mel's
    length must match the noise path's: a multiple of 88."""

    def __init__(self) -> None:
        super().__init__()
        self.noise = nn.Sequential(
            nn.ConvTranspose1d(4, 4, 22, stride=11, padding=6, output_padding=1),
            nn.LeakyReLU(0.2),
            *[m for _ in range(3) for m in (nn.ConvTranspose1d(4, 4, 4, 2, 1), nn.LeakyReLU(0.2))],
        )
        self.aux = nn.Conv1d(8, 4, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self.out = nn.Conv1d(4, 1, 3, padding=1)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        z = torch.zeros(c.shape[0], 4, (c.shape[-1] - 1) // 88 + 1, dtype=c.dtype)
        x = self.noise(z) + self.aux(c)
        return self.out(self.up(x))


def test_a_noise_path_does_not_set_the_probe_length_and_is_driven_alone(cli, monkeypatch):
    report = run_json(cli, "--arch", f"{ARCH}:NoisePath", "--sample-rate", "16000")
    # the mel path sets the length: the default 65,536 output samples, in multiples of 88
    assert report["subject"]["input_shape"] == [8, 88 * math.ceil(32768 / 88)]
    assert [(s["name"], s["factor"], s["fs_in_hz"]) for s in report["stages"]] == [
        ("up", 2, 8000.0)
    ]
    noted = [n for n in report["notes"] if "do not set the probe's length" in n]
    assert noted and noted[0].startswith("4 stage(s) take an input that does not depend")
    found = [f for f in report["findings"] if f["stage"].startswith("noise.")]
    assert {f["stage"] for f in found} == {"noise.0", "noise.2", "noise.4", "noise.6"}
    assert all("found but not reached by the probes" in f["message"] for f in found)
    # were the noise path's rate (1/88 of the mel's) to set the period: 11 times as long
    monkeypatch.setattr(short_passes, "input_free_stages", lambda *args: ((), None))
    longer = run_json(cli, "--arch", f"{ARCH}:NoisePath", "--sample-rate", "16000")
    assert longer["subject"]["input_shape"][-1] > 10 * 32768


def test_the_input_free_test_takes_discovery_s_pass_as_its_first_and_finds_the_same():
    from upsampcheck.model.discovery import discover_stages
    from upsampcheck.model.input_free import SHIFT, input_free_stages

    opts, cpu, shape = check.ModelOptions(sample_rate=16000), torch.device("cpu"), (8, 352)
    model, passes = NoisePath().eval(), []
    model.register_forward_pre_hook(lambda module, args: passes.append(args[0].clone()))
    found, _ = discover_stages(model, shape, None, opts, cpu, shorter=False)  # 352, then 704
    free, output = input_free_stages(model, found.stages, shape, None, opts, cpu)
    assert len(passes) == 3  # one pass of its own: the probe rotated by SHIFT samples
    assert torch.equal(passes[2], passes[0].roll(SHIFT, dims=-1))
    assert free == ("noise.0", "noise.2", "noise.4", "noise.6")
    # the same stages and output as from two passes of its own, on a model discovery never ran
    fresh = NoisePath().eval()
    fresh.load_state_dict(model.state_dict())
    assert input_free_stages(fresh, found.stages, shape, None, opts, cpu)[0] == free
    with torch.no_grad():
        assert torch.equal(output, fresh(passes[0]))


def test_signals_are_told_apart_by_their_values_and_never_equal_with_a_nan():
    from upsampcheck.subjects.digest import digest, same

    x = torch.randn(2, 3, 16)
    assert same(digest(x), digest(x.clone()))
    assert same(digest(x[..., ::2]), digest(x[..., ::2].contiguous()))  # strides do not count
    assert not same(digest(x), digest(x.roll(1, dims=-1)))
    assert not same(digest(x), digest(x.double()))  # nor does a dtype go unseen
    assert not same(digest(x), digest(x.reshape(3, 2, 16)))
    nan = torch.full((4,), float("nan"))
    assert not same(digest(nan), digest(nan.clone()))  # as torch.equal: NaN is not NaN


class ContextWindow(nn.Module):
    """ParallelWaveGAN's conditioning: a conv without padding eats ``2 * aux`` frames of
    context, then x4 x4 nearest upsampling; ``z = 0`` at the output length."""

    def __init__(self, aux: int = 2) -> None:
        super().__init__()
        self.aux = aux
        self.conv_in = nn.Conv1d(80, 8, 2 * aux + 1, bias=False)
        self.ups = nn.ModuleList([nn.Upsample(scale_factor=4) for _ in range(2)])
        self.smooth = nn.ModuleList([nn.Conv1d(8, 8, 9, padding=4) for _ in range(2)])
        self.first = nn.Conv1d(1, 8, 1)
        self.last = nn.Conv1d(8, 1, 1)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        c = self.conv_in(c)
        for up, smooth in zip(self.ups, self.smooth, strict=True):
            c = smooth(up(c))
        z = torch.zeros(c.shape[0], 1, c.shape[-1], dtype=c.dtype)
        return self.last(torch.tanh(self.first(z) + c))


def test_rates_behind_a_context_window_are_exact(cli):
    report = run_json(cli, "--arch", f"{ARCH}:ContextWindow", "--sample-rate", "22050")
    rates = [(s["name"], s["factor"], s["fs_in_hz"], s["fs_out_hz"]) for s in report["stages"]]
    hop = 22050 / 16
    assert rates == [
        ("ups.0", 4, round(hop, 4), round(4 * hop, 4)),
        ("ups.1", 4, round(4 * hop, 4), 22050.0),
    ]


class ThreeTemporaries(nn.Module):
    """Three tensors of the input's size alive at once (``a``, ``b`` and the output)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x * 2
        b = a + 1
        return b * 3


def test_the_forward_peak_counts_every_tensor_alive_at_once():
    x = torch.ones(3, 1000)
    assert forward_peak(ThreeTemporaries(), x, "forward") == 3 * x.numel() * 4
    views = nn.Sequential(nn.Flatten(0), nn.Unflatten(0, (3, 1000)))  # views: no new storage
    assert forward_peak(views, x, "forward") == 0


class WideInside(nn.Module):
    """A narrow x2 upsampler whose forward holds a 256-channel signal at the output rate:
    the stages' shapes alone miss most of its memory."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(1, 1, 4, stride=2, padding=1)
        self.wide = nn.Conv1d(1, 256, 1)
        self.back = nn.Conv1d(256, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.back(torch.tanh(self.wide(self.up(x))))


def test_the_memory_estimate_holds_the_model_s_own_forward(cli, monkeypatch):
    estimates = []
    real = check.model_memory

    def spy(*args, **kwargs):
        estimates.append((args[3], real(*args, **kwargs), real(*args[:4])))
        return estimates[-1][1]

    monkeypatch.setattr(check, "model_memory", spy)
    run_json(cli, "--arch", f"{ARCH}:WideInside", "--input-shape", "1,4096")
    frames, with_forward, shapes_only = estimates[-1]
    # tanh(wide) and wide: two 256-channel float32 signals of 2 * frames, per probe, x2 slack
    forward = footprint.FORWARD_SLACK * 2 * 256 * 2 * frames * 4 * 5
    assert with_forward - shapes_only >= forward
    assert math.isclose(with_forward - shapes_only, forward, rel_tol=0.05)
    # a machine where the shapes alone would fit, the forward not: refused with the estimate
    monkeypatch.setattr(bounds, "available_memory", lambda: int(with_forward * 0.8))
    result = cli("model", "--arch", f"{ARCH}:WideInside", "--input-shape", "1,4096", "--no-plots")
    assert result.code == 2 and "this run would need about" in result.err


def test_a_long_step_is_said_off_a_terminal_and_every_step_after_it(capsys):
    lines = StepLines(after=0.05)
    lines.step("discovering stages")  # short: not said
    lines.step("probing")
    time.sleep(0.3)
    lines.step("writing the report")
    lines.stop()
    said = capsys.readouterr().err.splitlines()
    assert [line.rsplit(" (", 1)[0] for line in said] == [
        "upsampcheck: probing",
        "upsampcheck: writing the report",
    ]
    assert all(line.endswith(" s)") for line in said)


def test_a_short_run_says_nothing_off_a_terminal(capsys):
    lines = StepLines(after=5.0)
    for step in ("discovering stages", "probing", "writing the report"):
        lines.step(step)
    lines.stop()
    assert capsys.readouterr().err == ""


def test_a_deep_stage_s_rate_below_a_final_decimation_snaps_exactly():
    """Demucs v2 (depth 5) resamples x2 at its input and back /2 at its output: its first
    decoder layer's output sits 4·4·4·4 / 2 = 128 below the output, which no run of later
    factors gives; measured growth 1.2 % off it (padding to a valid length) still snaps."""
    from upsampcheck.model.rates import nominal_ratio

    every = [2, 4, 4, 4, 4, 4]
    assert nominal_ratio(129_536, 1000, [4, 4, 4, 4], every) == (128.0, True)
    assert nominal_ratio(32_400, 1000, [4, 4, 4], every) == (32.0, True)
    # runs of later factors still come first, and 2 % is the bound for the quotients
    assert nominal_ratio(64_500, 1000, [4, 4, 4], every) == (64.0, True)
    assert nominal_ratio(131_800, 1000, [4, 4, 4, 4], every)[1] is False


class RecomputedWeights(nn.Module):
    """Weight norm recomputes a 4 MB kernel on every call: memory that does not grow with
    the signal, beside a x2 upsampler's that does."""

    def __init__(self) -> None:
        super().__init__()
        self.big = nn.utils.parametrizations.weight_norm(nn.Conv1d(64, 64, 255, padding=127))
        self.up = nn.ConvTranspose1d(64, 1, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.big(x))


def test_the_forward_cost_splits_what_grows_with_the_signal_from_what_does_not():
    from upsampcheck.model.footprint import forward_cost

    opts = check.ModelOptions(sample_rate=16000)
    model = RecomputedWeights().eval()
    cost = forward_cost(model, (64, 256), None, opts, torch.device("cpu"))
    fixed, per_element = cost.fixed, cost.per_element
    kernel = 64 * 64 * 255 * 4
    assert kernel <= fixed <= 1.1 * kernel  # the recomputed kernel (and its norm), once
    # the peak is inside the big conv: the kernel and its 64 x T float32 output, 64 T * 4 /
    # (66 T) bytes per element of the widest stage (64 x T in, 2 T out); counted as at least
    # the 4 bytes of a float32 input and output alive together
    assert 64 * 4 / 66 < 4 and per_element == 4
    # the widest stage grows by 66 elements per input sample (256 to 512): at 1000, 66,000
    assert (cost.length, cost.widest, cost.growth) == (512, 66 * 512, 66.0)
    assert cost.widest_at(1000) == 66_000


def test_the_forward_cost_reads_the_passes_discovery_ran_and_gives_what_its_own_would():
    from upsampcheck.model.discovery import discover_stages
    from upsampcheck.model.footprint import forward_cost

    opts, cpu = check.ModelOptions(sample_rate=16000), torch.device("cpu")
    alone = forward_cost(RecomputedWeights().eval(), (64, 256), None, opts, cpu)
    model, passes = RecomputedWeights().eval(), []
    model.register_forward_pre_hook(lambda module, args: passes.append(args[0].shape[-1]))
    discover_stages(model, (64, 256), None, opts, cpu, shorter=False)  # 256, then 512
    assert passes == [256, 512]
    cost = forward_cost(model, (64, 256), None, opts, cpu)
    assert passes == [256, 512]  # no pass of its own: both lengths were counted in discovery
    assert cost == alone  # the same peaks, split the same way (4 MB kernel, 4 B per element)


class PaddedShort(nn.Module):
    """SNAC's shape: every input is padded up to a multiple of 4096 samples before a x2
    upsampler, so short inputs all look 4096 long."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(1, 8, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-1]
        x = F.pad(x, (0, -length % 4096))
        return self.up(x)[..., : 2 * length].sum(1, keepdim=True)


def test_a_model_that_pads_short_inputs_is_sized_from_how_its_stages_grow():
    from upsampcheck.model.footprint import forward_cost

    opts = check.ModelOptions(sample_rate=16000)
    cost = forward_cost(PaddedShort().eval(), (1, 64), None, opts, torch.device("cpu"))
    # 64, 128, 512 and 2048 samples are all 4096 inside; 8192 grows it, from 2048 on
    padded, grown = 4096 + 8 * 8192, 8192 + 8 * 16384  # the stage's input and output
    assert (cost.length, cost.widest, cost.growth) == (8192, grown, (grown - padded) / 6144)
    # at 4096 samples: 1.33 times what it is, where scaling the 64-sample shapes says 64 times
    assert cost.widest_at(4096) == pytest.approx(padded * 4 / 3)


class TrainingSegment(nn.Module):
    """HTDemucs's shape: every input is padded to the training segment (4096 samples) before a
    /4 encoder and a x4 decoder, and the output cropped back to the input's length, so the
    stages keep one length whatever the input."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv1d(2, 8, 4, stride=4)
        self.up = nn.ConvTranspose1d(8, 2, 4, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-1]
        x = F.pad(x, (0, 4096 - length)) if length < 4096 else x[..., :4096]
        return self.up(torch.tanh(self.down(x)))[..., :length]


def test_stages_padded_to_a_segment_of_the_model_s_own_are_refused_naming_shape_and_stage(cli):
    # 3400 of 4096 samples: the stage's length ratio 0.83 would snap loosely to 1
    result = cli("model", "--arch", f"{ARCH}:TrainingSegment", "--input-shape", "2,3400")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "the rates of up (0.8301) cannot be read at input 2,3400" in result.err
    assert "pass --input-shape at the length it runs at (its training segment)" in result.err
    at_segment = run_json(cli, "--arch", f"{ARCH}:TrainingSegment", "--input-shape", "2,4096")
    assert [(s["name"], s["factor"], s["fs_in_hz"]) for s in at_segment["stages"]] == [
        ("up", 4, 4000.0)
    ]


class OwnChannels(nn.Module):
    """Vocos's front end: ``(B, T)`` audio framed into ``(B, 16, T / 16)`` features (the model
    makes its own channel axis), then a x4 transposed conv. Audio given with a channel axis
    reaches the conv with four axes."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(16, 1, 8, stride=4, padding=2)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.up(audio.unfold(-1, 16, 16).transpose(-1, -2))


def test_a_model_that_makes_its_own_channel_axis_gets_an_input_without_one(cli):
    report = run_json(cli, "--arch", f"{ARCH}:OwnChannels", "--sample-rate", "16000")
    assert len(report["subject"]["input_shape"]) == 1
    (note,) = [n for n in report["notes"] if "found by trying candidates" in n]
    assert "one axis fewer: the model's 1-D conv got 4 axes, so it makes its own channels" in note
    # the output runs at 16 kHz: the x4 stage's input at 4 kHz (the audio at 64 kHz)
    assert [(s["name"], s["factor"], s["fs_in_hz"]) for s in report["stages"]] == [
        ("up", 4, 4000.0)
    ]


class FramesOf16(nn.Module):
    """DCUNet's shape: a 1024-point STFT-like encoder (hop 256, not centred: (T - 1024) / 256
    + 1 frames) whose U-Net needs the frames less one divisible by 16, which its error says of
    the frames, not of T: 1024 samples run, 65,536 do not; then the inverse, x256."""

    def __init__(self) -> None:
        super().__init__()
        self.stft = nn.Conv1d(1, 8, 1024, stride=256)
        self.up = nn.ConvTranspose1d(8, 1, 1024, stride=256)  # the inverse: T samples back

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = self.stft(x)
        if (frames.shape[-1] - 1) % 16:
            raise TypeError(f"time divisible by 16, got {frames.shape[-1] - 1}")
        return self.up(frames)


def test_a_probe_length_the_model_refuses_is_replaced_by_one_near_it_that_runs(cli):
    report = run_json(cli, "--arch", f"{ARCH}:FramesOf16", "--sample-rate", "16000")
    length = report["subject"]["input_shape"][-1]
    assert (length - 1024) % 4096 == 0 and length > 1024
    (note,) = [n for n in report["notes"] if n.startswith("the model refused input length")]
    assert f"ran at {length}: the 1024 its shape was found at plus a multiple of" in note
    assert [(s["name"], s["factor"], s["fs_in_hz"]) for s in report["stages"]] == [
        ("up", 256, 62.5)
    ]
