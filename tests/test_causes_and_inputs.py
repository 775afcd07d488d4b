"""Causes that fit the weights, and inputs that mean something: a fixed filter (a PQMF's
one-hot ``updown_filter`` buffer) is named as one, never as "weight initialization"; a fresh
``--arch`` transposed conv is its initialization, a checkpoint's its learned weights; a model
that draws random numbers in ``forward`` is seeded before every pass and the run reproduces.
The small stand-in models below are built by ``--arch test_causes_and_inputs:NAME``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from upsampcheck.model import check

ARCH = "test_causes_and_inputs"


def run_json(cli, *args: str) -> dict:
    result = cli("model", *args, "--no-plots", "--format", "json")
    assert result.code in (0, 1), result.err
    return result.json()


def tonal_causes(report: dict, stage: str) -> list[tuple[str, str]]:
    return [
        (f["cause"], f["fix"])
        for f in report["findings"]
        if f["check"] == "tonal" and f["stage"] == stage
    ]


# ---- causes that fit the weights ------------------------------------------------------------


class PQMF(nn.Module):
    """Multi-band MelGAN's synthesis: zero stuffing by 4 with a fixed one-hot buffer."""

    def __init__(self, subbands: int = 4) -> None:
        super().__init__()
        self.subbands = subbands
        updown = torch.zeros(subbands, subbands, subbands)
        updown[range(subbands), range(subbands), 0] = 1.0
        self.register_buffer("updown_filter", updown)

    def synthesis(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(x, self.updown_filter * self.subbands, stride=self.subbands)


class MultiBand(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3, padding=1)
        self.pqmf = PQMF(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pqmf.synthesis(self.conv(x))


class FixedBank(nn.Module):
    """A fixed (buffer) transposed-conv kernel with more than one tap: a fixed filter bank."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", torch.tensor([[[1.0, 0.5, 0.25, 0.0, 0.5]]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(x, self.kernel, stride=4)


class Transposed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(1, 1, 8, stride=4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


def test_a_pqmf_zero_stuffing_buffer_is_a_fixed_filter_not_an_initialization(cli):
    report = run_json(cli, "--arch", f"{ARCH}:MultiBand", "--sample-rate", "16000")
    (stage,) = report["stages"]
    assert (stage["name"], stage["factor"], stage["fs_in_hz"]) == (
        "pqmf:conv_transpose1d",
        4,
        4000.0,
    )
    assert stage["details"]["weights"] == "fixed"
    assert stage["details"]["zero_stuffing"] is True
    assert stage["details"]["polyphase_sums"] == [4.0, 0.0, 0.0, 0.0]
    ((cause, fix),) = tonal_causes(report, "pqmf:conv_transpose1d")
    assert cause == (
        "a fixed filter (not trained): zero stuffing by 4 (a one-hot kernel): every multiple "
        "of the input rate carries a copy of the input's DC"
    )
    assert fix.startswith("follow it with a low-pass that removes the images")
    assert "initialization" not in cause and "learned" not in cause


def test_a_fixed_kernel_with_several_taps_is_a_fixed_filter_bank(cli):
    report = run_json(cli, "--arch", f"{ARCH}:FixedBank", "--sample-rate", "16000")
    ((cause, _),) = tonal_causes(report, "<root>:conv_transpose1d")
    assert cause.startswith(
        "a fixed filter bank (not trained): its polyphase components have different DC gains "
        "(sums P_r = [1.5, 0.5, 0.25, 0])"
    )


def test_a_fresh_arch_is_its_initialization_and_a_checkpoint_its_learned_weights(cli, tmp_path):
    fresh = run_json(cli, "--arch", f"{ARCH}:Transposed", "--sample-rate", "16000")
    ((cause, _),) = tonal_causes(fresh, "up")
    assert cause.startswith(
        "weight initialization: the kernel's polyphase components have different DC gains "
        "(sums P_r = ["
    )
    torch.manual_seed(3)
    torch.save(Transposed().state_dict(), tmp_path / "g.pt")
    trained = run_json(
        cli, str(tmp_path / "g.pt"), "--arch", f"{ARCH}:Transposed", "--sample-rate", "16000"
    )
    ((cause, _),) = tonal_causes(trained, "up")
    assert cause.startswith("learned weights: the kernel's polyphase components")
    assert "initialization" not in cause and "fixed" not in cause


# ---- inputs that mean something: a model that draws random numbers ---------------------------


class Noisy(nn.Module):
    """Noise injection before a transposed conv x4: its output is random."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(1, 1, 8, stride=4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x + torch.randn_like(x) * 0.01)


def test_a_model_that_draws_random_numbers_is_seeded_and_reproduces(cli, tmp_path):
    args = ["--arch", f"{ARCH}:Noisy", "--sample-rate", "16000", "--seed", "7"]
    first = cli("model", *args, "--no-plots", "--format", "json", out=tmp_path / "a")
    again = cli("model", *args, "--no-plots", "--format", "json", out=tmp_path / "b")
    assert first.code in (0, 1), first.err
    assert first.out == again.out
    assert (tmp_path / "a" / "report.json").read_bytes() == (
        tmp_path / "b" / "report.json"
    ).read_bytes()
    report = first.json()
    assert (
        "the model draws random numbers in forward (its output differs between two runs of "
        "the same input): its output is random; every pass is seeded with --seed 7"
    ) in report["notes"]
    (stage,) = report["stages"]
    assert (stage["name"], stage["factor"], stage["fs_in_hz"]) == ("up", 4, 4000.0)
    assert stage["fs_out_hz"] == 16000.0
    assert [line["freq_hz"] for line in stage["tonal"]["lines"]][:1] == [4000.0]  # m · fs_in
    assert stage["details"]["weights"] == "initialization"
    torch.manual_seed(0)  # the caller's generator is left as it was
    expected = torch.rand(3)
    torch.manual_seed(0)
    cli("model", *args, "--no-plots", "--format", "json", out=tmp_path / "c")
    assert torch.equal(torch.rand(3), expected)


def test_a_deterministic_model_gets_no_random_note(cli):
    report = run_json(cli, "--arch", f"{ARCH}:Transposed", "--sample-rate", "16000")
    assert not [n for n in report["notes"] if "random" in n]


class NumpyNoisy(nn.Module):
    """Noise from numpy's global generator, which ``--seed`` does not reach."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(1, 1, 4, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.from_numpy(np.random.standard_normal(x.shape).astype(np.float32))
        return self.up(x + noise * 0.01)


def test_noise_from_numpy_s_generator_is_noted_as_random():
    from upsampcheck.model.discovery import discover_stages
    from upsampcheck.model.short_passes import short_passes

    opts, cpu, notes = check.ModelOptions(sample_rate=16000), torch.device("cpu"), []
    model = NumpyNoisy().eval()
    found, _ = discover_stages(model, (1, 1024), None, opts, cpu)
    short_passes(model, found, (1, 1024), 1, False, None, opts, cpu, notes)
    assert [n for n in notes if n.startswith("the model draws random numbers in forward")]


def test_a_deterministic_model_pays_one_short_pass_after_discovery():
    from upsampcheck.model.discovery import discover_stages
    from upsampcheck.model.short_passes import short_passes

    opts, cpu, notes, passes = check.ModelOptions(sample_rate=16000), torch.device("cpu"), [], []
    model = Transposed().eval()
    model.register_forward_pre_hook(lambda module, args: passes.append(args[0].shape[-1]))
    found, _ = discover_stages(model, (1, 1024), None, opts, cpu)
    assert passes == [64, 128]  # discovery: the short length, then twice it for the slope
    short_passes(model, found, (1, 1024), 1, False, None, opts, cpu, notes)
    # the memory count read both discovery passes, the input-free test took the first as its
    # own and ran the rotated probe, and no generator moved: no pass under a second seed
    assert passes == [64, 128, 64] and notes == []


# ---- inputs that mean something: a spectrogram's height --------------------------------------


class SpecUpsampler(nn.Module):
    """DiffWave's spectrogram upsampler: two ConvTranspose2d x16 on (B, 1, n_mels, T), the
    channel axis added in forward (its input is (B, n_mels, T))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.ConvTranspose2d(1, 1, (3, 32), stride=(1, 16), padding=(1, 8))
        self.conv2 = nn.ConvTranspose2d(1, 1, (3, 32), stride=(1, 16), padding=(1, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(x.unsqueeze(1)), 0.4)
        return F.leaky_relu(self.conv2(x), 0.4).squeeze(1)


class SpecUpsampler4d(SpecUpsampler):
    """The same upsampler taking (B, 1, n_mels, T) itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv2(F.leaky_relu(self.conv1(x), 0.4)), 0.4)


def test_a_spectrogram_upsampler_gets_80_mel_bins_not_one(cli):
    for name, shape in (("SpecUpsampler", [80]), ("SpecUpsampler4d", [1, 80])):
        report = run_json(cli, "--arch", f"{ARCH}:{name}", "--sample-rate", "22050")
        assert report["subject"]["input_shape"][:-1] == shape
        stages = [(s["name"], s["factor"], s["details"]["in_shape"][1]) for s in report["stages"]]
        assert stages == [("conv1", 16, 80), ("conv2", 16, 80)]  # the stage input's height
        assert [s["fs_in_hz"] for s in report["stages"]] == [86.1328, 1378.125]  # 22050 / 256, / 16
        (note,) = [n for n in report["notes"] if n.startswith("input shape ")]
        assert (
            "height 80 mel bins: the first layer, a ConvTranspose2d with 1 input channel, "
            "reads a spectrogram (B, 1, n_mels, T); 80 is a common mel size, guessed"
        ) in note


@pytest.mark.parametrize("weights", ["fixed", "learned", "initialization"])
def test_equal_polyphase_sums_never_read_as_different_dc_gains(weights):
    """A kernel whose phase sums are equal (a Kaiser-sinc anti-image filter: [1, 1]) replicates
    no DC (W_1 = P_0 - P_1 = 0): lines on its grid came from before it. Unequal sums (by more
    than 0.1 %) are still the kernel's own mismatch."""
    from upsampcheck.report.explain import tonal_cause

    details = {"polyphase_sums": [1.0, 1.0004], "weights": weights, "stride": 2, "length": 12}
    cause, fix = tonal_cause("transposed", details, {"dc", "noise"})
    assert cause.startswith("its polyphase components have equal DC gains, so it replicates")
    assert "different" not in cause and fix.startswith("look at the stages before it")
    details["polyphase_sums"] = [1.0, 0.99]
    cause, _ = tonal_cause("transposed", details, {"dc"})
    assert "different DC gains" in cause and "[1, 0.99]" in cause
