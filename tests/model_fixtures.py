"""Small models built from code, one per stage-discovery path of ``upsampcheck.subjects.discover``.

Every model takes ``(B, C, T)`` audio-like input unless noted; the comment on each class gives
the stages :func:`upsampcheck.subjects.discover.discover` must find (name, kind, factor).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm


class TransposedStack(nn.Module):
    """``decoder.1`` ConvTranspose1d x2 (T -> 2T), ``decoder.3`` ConvTranspose1d x4 (-> 8T)."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.decoder = nn.Sequential(
            nn.Conv1d(channels, 8, 3, padding=1),
            nn.ConvTranspose1d(8, 8, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose1d(8, channels, 8, stride=4, padding=2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(x)


class WeightNormTransposed(nn.Module):
    """``up`` (parametrizations.weight_norm) and ``up_old`` (old weight_norm), ConvTranspose1d x2.

    ``post`` is a weight-normed Conv1d: its weight parametrization must not look like growth.
    """

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.up = weight_norm(nn.ConvTranspose1d(channels, channels, 4, stride=2, padding=1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            conv = nn.ConvTranspose1d(channels, channels, 4, stride=2, padding=1)
            self.up_old = nn.utils.weight_norm(conv)
        self.post = weight_norm(nn.Conv1d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.up_old(self.up(x)))


class UpsampleConv(nn.Module):
    """``up`` Upsample(nearest) x2 followed by a conv; its inner F.interpolate is not counted."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))


class _InterpBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="linear", align_corners=False))


class InterpolateBlocks(nn.Module):
    """``blocks.0:interpolate``, ``blocks.1:interpolate``: interpolate(linear) x2 each."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.blocks = nn.Sequential(_InterpBlock(channels), _InterpBlock(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class FunctionalTransposed(nn.Module):
    """``<root>:conv_transpose1d`` x4 with the model's own Parameters."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels, 2, 8) / 8)
        self.bias = nn.Parameter(torch.randn(2) / 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(x, self.weight, self.bias, stride=4, padding=2)


class _Hold(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.repeat_interleave(2, dim=1)  # channels: not a stage
        x = x.repeat_interleave(3, dim=-1)
        return torch.repeat_interleave(x, 2, dim=-1)


class RepeatInterleave(nn.Module):
    """``hold:repeat_interleave`` x3, ``hold:repeat_interleave#2`` x2 (channel repeat ignored)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = _Hold()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hold(x)


class _Shuffle(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, 4 * channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape
        h = self.conv(x).view(b, -1, 1, t)  # (B, 4C, 1, T)
        return F.pixel_shuffle(h, 2).flatten(1, 2)  # (B, C, 2, 2T) -> (B, 2C, 2T)


class PixelShuffleTime(nn.Module):
    """``shuffle:pixel_shuffle`` x2 on a ``(B, 4C, 1, T)`` view of a conv output."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.shuffle = _Shuffle(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(x)


class _Subpixel(nn.Module):
    def __init__(self, channels: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.conv = nn.Conv1d(channels, channels * factor, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        h = self.conv(x).view(b, c, self.factor, t).permute(0, 1, 3, 2)
        return h.reshape(b, c, t * self.factor)


class SubpixelReshape(nn.Module):
    """``up`` shape-growth x3: conv to C*S channels, interleaved into time by reshape."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.up = _Subpixel(channels, 3)
        self.post = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.up(x))


class _ZeroStuff(nn.Module):
    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        y = x.new_zeros(b, c, t * self.factor)
        y[..., :: self.factor] = x
        return y


class ZeroInsert(nn.Module):
    """``stuff`` shape-growth x2: zero insertion by slice assignment."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.pre = nn.Conv1d(channels, channels, 3, padding=1)
        self.stuff = _ZeroStuff(2)
        self.post = nn.Conv1d(channels, channels, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.stuff(self.pre(x)))


class _OverlapAdd(nn.Module):
    def __init__(self, frame: int, hop: int) -> None:
        super().__init__()
        self.frame, self.hop = frame, hop

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        n = frames.shape[-1]
        length = (n - 1) * self.hop + self.frame
        out = F.fold(frames, (1, length), (1, self.frame), stride=(1, self.hop))
        return out.flatten(1, 2)  # (B, 1, 1, L) -> (B, 1, L)


class FoldOverlapAdd(nn.Module):
    """``ola:fold`` x4: conv makes 8-sample frames, F.fold overlap-adds them with hop 4."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.frames = nn.Conv1d(channels, 8, 3, padding=1)
        self.ola = _OverlapAdd(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ola(self.frames(x))


class _Synth(nn.Module):
    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        z = torch.complex(spec, torch.zeros_like(spec))
        return torch.istft(z, self.n_fft, self.hop, window=self.window, center=True)


class ISTFTSynth(nn.Module):
    """``synth:istft`` x16 (hop): input a real ``(B, 33, frames)`` spectrogram, n_fft 64."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Conv1d(33, 33, 1)
        self.synth = _Synth(64, 16)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.synth(self.mix(spec))


class FreqTransposed2d(nn.Module):
    """``up`` ConvTranspose2d stride (2, 1) on ``(B, C, freq, frames)``: other_axis only."""

    def __init__(self, channels: int = 2) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(channels, channels, (4, 1), stride=(2, 1), padding=(1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class NoOpInterpolate(nn.Module):
    """``F.interpolate(scale_factor=1)``: no stage."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=1.0, mode="nearest")


class Downsampler(nn.Module):
    """Strided conv and interpolate(0.5): no stage."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.down = nn.Conv1d(channels, channels, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.down(x), scale_factor=0.5, mode="linear")


class _FeatureMLP(nn.Module):
    """(B, C, T) -> (B, T, C) -> Linear(C, 4C) -> Linear(4C, C) -> back: features, not time."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.up = nn.Linear(channels, 4 * channels)
        self.down = nn.Linear(4 * channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x.transpose(1, 2)))).transpose(1, 2)


class _Expand(nn.Module):
    """A block whose output is (B, T, 4C): its last axis grows, but through a matmul."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Parameter(torch.randn(channels, 4 * channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x.transpose(1, 2) @ self.proj)


class _BLSTM(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(channels, channels, bidirectional=True)
        self.linear = nn.Linear(2 * channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x.permute(2, 0, 1))  # (T, B, 2C)
        return self.linear(y).permute(1, 2, 0)


class _Pad(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (2, 2))


class NoUpsampling(nn.Module):
    """Convs, padding, weight norm, a feature MLP, a BLSTM, a feature expansion: no stage."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.conv = weight_norm(nn.Conv1d(channels, channels, 3, padding=1))
        self.pad = _Pad()
        self.valid = nn.Conv1d(channels, channels, 5)
        self.mlp = _FeatureMLP(channels)
        self.lstm = _BLSTM(channels)
        self.expand = _Expand(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.valid(self.pad(self.conv(x)))
        x = self.lstm(self.mlp(x))
        return self.expand(x).transpose(1, 2)[:, : x.shape[1]]


class _Broken(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom: bad state\nsecond line of detail")


class Failing(nn.Module):
    """Raises in ``body.2`` (_Broken) after a ConvTranspose1d ran."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ConvTranspose1d(channels, channels, 4, stride=2, padding=1),
            nn.ReLU(),
            _Broken(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class RecoversFromError(nn.Module):
    """``broken`` raises and the model catches it, then ``up`` ConvTranspose1d x2 and
    ``<root>:interpolate`` x2 run: the failed call must not disturb names or shape-growth."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.broken = _Broken()
        self.up = nn.ConvTranspose1d(channels, channels, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            x = self.broken(x)
        except RuntimeError:
            pass
        return F.interpolate(self.up(x), scale_factor=2)


class TupleOutput(nn.Module):
    """Returns ``(wave, {"features": h})``: analysed output ``output[0]``; ``up`` x2."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(channels, 1, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.up(x), {"features": x}


class DictOutput(nn.Module):
    """Returns ``{"lengths": int tensor, "wave": wave}``: analysed ``output['wave']``."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=4, mode="linear")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.up(x)
        return {"lengths": torch.tensor([y.shape[-1]]), "wave": y}


class Codec(nn.Module):
    """``decode``: ``decoder`` ConvTranspose1d x4, then ``<root>:interpolate`` (nearest) x2."""

    def __init__(self, channels: int = 4, latent: int = 8) -> None:
        super().__init__()
        self.encoder = nn.Conv1d(channels, latent, 8, stride=4, padding=2)
        self.decoder = nn.ConvTranspose1d(latent, channels, 8, stride=4, padding=2)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.decoder(z), scale_factor=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


# ---- models for `upsampcheck model` (tests/test_model.py) ---------------------------------


class OnesTransposed(nn.Module):
    """``up`` ConvTranspose1d(1, 1, length, stride), all-ones weights, no bias: the layer of
    tests/test_layer_math.py inside a model (DC lines by the polyphase formula)."""

    def __init__(self, stride: int = 4, length: int = 5) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(1, 1, length, stride, bias=False)
        with torch.no_grad():
            self.up.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class TorchaudioResample(nn.Module):
    """``torchaudio.functional.resample`` from ``orig`` to ``new`` Hz (16 -> 48 kHz: the root is
    one shape-growth stage x3: a strided conv1d to 3 phases, interleaved by reshape)."""

    def __init__(self, orig: int = 16000, new: int = 48000) -> None:
        super().__init__()
        from torchaudio.functional import resample

        self.orig, self.new, self.resample = orig, new, resample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resample(x, self.orig, self.new)


class ZeroInsertion(nn.Module):
    """Zero insertion by ``factor`` and nothing else: the root is a shape-growth stage; on DC
    every ``m * fs_in`` line is as loud as the signal, and images are not attenuated (0 dB)."""

    def __init__(self, factor: int = 3) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.new_zeros(*x.shape[:-1], x.shape[-1] * self.factor)
        y[..., :: self.factor] = x
        return y


class SincResampler(nn.Module):
    """Upsample by ``factor`` the julius way (``julius.resample_frac``): one windowed-sinc
    kernel per output phase, each normalised to unit DC gain, applied with conv1d and the
    phases interleaved by reshape (the root: one shape-growth stage).

    Phase ``r`` computes ``y[S m + r] = sum_j x[m - j] h_r(j)``, ``h_r(j) = rolloff
    sinc(rolloff (j + r / S)) w(j + r / S)`` with a Hann window over ``|t| <= zeros``: the
    low-pass passes ``rolloff`` of the input band and stops the images; equal phase DC gains
    make it tone-free on DC (docs/method.md, Exact formulas: all polyphase sums equal).
    """

    def __init__(self, factor: int = 3, zeros: int = 24, rolloff: float = 0.945) -> None:
        super().__init__()
        self.factor, self.zeros = factor, zeros
        taps = torch.arange(zeros, -zeros - 1, -1, dtype=torch.float64)  # j = W .. -W
        t = taps[None, :] + torch.arange(factor, dtype=torch.float64)[:, None] / factor
        window = torch.where(t.abs() <= zeros, torch.cos(torch.pi * t / (2 * zeros)) ** 2, 0.0)
        kernel = rolloff * torch.sinc(rolloff * t) * window
        kernel = kernel / kernel.sum(-1, keepdim=True)  # every phase: DC gain exactly 1
        self.register_buffer("kernel", kernel[:, None, :].float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = F.pad(x.reshape(-1, 1, shape[-1]), (self.zeros, self.zeros), mode="replicate")
        phases = F.conv1d(flat, self.kernel)  # (N, S, T)
        return phases.transpose(1, 2).reshape(*shape[:-1], shape[-1] * self.factor)


class NaNOutput(nn.Module):
    """``up`` ConvTranspose1d x2, then ``log``: NaN wherever the upsampled signal is negative."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(1, 1, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(self.up(x))


def conv_tasnet() -> nn.Module:
    """torchaudio's ``conv_tasnet_base`` (two sources): ``--arch model_fixtures:conv_tasnet``."""
    import torchaudio

    return torchaudio.models.conv_tasnet_base()


def wavernn_upsampler() -> nn.Module:
    """WaveRNN's ``UpsampleNetwork`` (scales 5, 5, 11: hop 275), small hidden sizes."""
    from torchaudio.models.wavernn import UpsampleNetwork

    return UpsampleNetwork(
        upsample_scales=[5, 5, 11], n_res_block=1, n_freq=80, n_hidden=16, n_output=16
    )


class Parameterless(nn.Module):
    """No weights at all; stage ``repeat`` (repeat_interleave x2). Its state dict is empty."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.repeat_interleave(x, 2, dim=-1)


class UnreachedBranch(nn.Module):
    """Stages ``up`` and ``unused`` (ConvTranspose1d x4); ``unused`` is always driven by zeros,
    like StyleMelGAN's noise branch with z = 0."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(1, 1, 8, 4, bias=False)
        self.unused = nn.ConvTranspose1d(1, 1, 8, 4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x) + self.unused(torch.zeros_like(x))


class _Spin(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while True:  # a forward pass that never returns
            pass


class NeverReturns(nn.Module):
    """Stage ``up`` (ConvTranspose1d x4) behind ``stuck``, whose forward never returns."""

    def __init__(self) -> None:
        super().__init__()
        self.stuck = _Spin()
        self.up = nn.ConvTranspose1d(1, 1, 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.stuck(x))


class PlantedLine(nn.Module):
    """An offset (as a bias leaves), then stages ``up`` (ConvTranspose1d x4, kernel 5 of equal
    weights: partial overlap, so the offset becomes lines at every multiple of its input rate)
    and ``smooth`` (nearest x2: no line of its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(1, 1, 5, 4, bias=False)
        with torch.no_grad():
            self.up.weight.fill_(0.25)
        self.smooth = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.smooth(self.up(x + 0.05))


class ParallelBranches(nn.Module):
    """Stage ``tonal`` (ConvTranspose1d x4, kernel 5 of equal weights, fed an offset: lines at
    every multiple of its input rate) and stage ``clean`` (x4, kernel 8 of equal weights: no
    line) run side by side; only ``tonal`` feeds ``up`` (nearest x2), which makes no line of
    its own. ``clean`` runs last before ``up``, as StyleMelGAN's blocks do after its noise
    upsampler."""

    def __init__(self) -> None:
        super().__init__()
        self.tonal = nn.ConvTranspose1d(1, 1, 5, 4, bias=False)
        self.clean = nn.ConvTranspose1d(1, 1, 8, 4, bias=False)
        with torch.no_grad():
            self.tonal.weight.fill_(0.25)
            self.clean.weight.fill_(0.25)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.tonal(x + 0.05)
        b = self.clean(x)
        n = min(a.shape[-1], b.shape[-1])
        return self.up(a[..., :n] + 0.0 * b[..., :n])


class FixedSize(nn.Module):
    """Stage ``up`` (nn.Upsample to a fixed 16000 samples): its factor depends on the input."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Upsample(size=16000, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)
