"""A BigVGAN-like vocoder built from code: four ConvTranspose1d upsamplers (x8, x8, x2, x2)
and, in every residual layer and after the last block, an anti-aliased activation: x2
upsampling by ``F.conv_transpose1d`` with one shared Kaiser-windowed sinc kernel, a
LeakyReLU, and /2 decimation by ``F.conv1d`` with the same kernel (alias-free GAN style).

Stages :func:`upsampcheck.subjects.discover.discover` finds: ``ups.0`` .. ``ups.3``
(ConvTranspose1d x8, x8, x2, x2) and 73 ``<block>.act*.up:conv_transpose1d`` x2, 18 per block
(3 residual blocks x 3 dilations x 2 activations) and one for ``act_post``: 77 in all. Every
anti-aliasing stage has the same kernel; those of one block run at the same input rate, which
is twice the output rate of that block's ``ups`` (one block's rate is the model output rate).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

KERNEL = 12
"""Taps of the Kaiser-sinc kernel (BigVGAN's alias-free activation uses 12)."""


def kaiser_sinc(cutoff: float = 0.25, half_width: float = 0.3, size: int = KERNEL) -> torch.Tensor:
    """``(1, 1, size)``: a Kaiser-windowed sinc low-pass at ``cutoff`` (cycles/sample), unit
    DC gain."""
    delta = 2.285 * (size // 2 - 1) * math.pi * 4 * half_width + 7.95
    beta = (
        0.1102 * (delta - 8.7)
        if delta > 50
        else 0.5842 * (delta - 21) ** 0.4 + 0.07886 * (delta - 21)
    )
    window = torch.kaiser_window(size, beta=beta, periodic=False, dtype=torch.float64)
    t = torch.arange(-size // 2, size // 2, dtype=torch.float64) + 0.5
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * t)
    return (taps / taps.sum()).float().view(1, 1, size)


class Up2(nn.Module):
    """x2 by ``F.conv_transpose1d`` (depthwise, the shared kernel), replicate-padded, cropped to
    ``2 T``."""

    def __init__(self, kernel: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("filter", kernel, persistent=False)
        self.pad = KERNEL // 2 - 1
        self.crop_left = self.pad * 2 + (KERNEL - 2) // 2
        self.crop_right = self.pad * 2 + (KERNEL - 2 + 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        y = 2 * F.conv_transpose1d(
            x, self.filter.expand(channels, -1, -1), stride=2, groups=channels
        )
        return y[..., self.crop_left : -self.crop_right]


class Down2(nn.Module):
    """/2 by ``F.conv1d`` with the shared kernel (depthwise), replicate-padded to ``T / 2``."""

    def __init__(self, kernel: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("filter", kernel, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (KERNEL // 2 - 1, KERNEL // 2), mode="replicate")
        return F.conv1d(x, self.filter.expand(channels, -1, -1), stride=2, groups=channels)


class AntiAliasAct(nn.Module):
    """``up`` (x2) -> LeakyReLU -> ``down`` (/2)."""

    def __init__(self, kernel: torch.Tensor) -> None:
        super().__init__()
        self.up, self.down = Up2(kernel), Down2(kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.leaky_relu(self.up(x), 0.1))


class ResLayer(nn.Module):
    """Three dilated conv pairs, each preceded by an anti-aliased activation."""

    def __init__(self, channels: int, kernel: torch.Tensor) -> None:
        super().__init__()
        self.acts1 = nn.ModuleList(AntiAliasAct(kernel) for _ in range(3))
        self.acts2 = nn.ModuleList(AntiAliasAct(kernel) for _ in range(3))
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, 3, dilation=d, padding=d) for d in (1, 3, 5)
        )
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, 3, padding=1) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for a1, c1, a2, c2 in zip(self.acts1, self.convs1, self.acts2, self.convs2, strict=True):
            x = x + c2(a2(c1(a1(x))))
        return x


class AliasFreeVocoder(nn.Module):
    """``(B, mels, frames) -> (B, 1, 256 frames)``: BigVGAN's layout at small widths."""

    def __init__(self, mels: int = 8, channels: int = 16) -> None:
        super().__init__()
        kernel = kaiser_sinc()
        self.conv_pre = nn.Conv1d(mels, channels, 7, padding=3)
        rates, sizes = (8, 8, 2, 2), (16, 16, 4, 4)
        self.ups = nn.ModuleList()
        self.blocks = nn.ModuleList()
        width = channels
        for rate, size in zip(rates, sizes, strict=True):
            self.ups.append(
                nn.ConvTranspose1d(width, width // 2, size, stride=rate, padding=(size - rate) // 2)
            )
            width //= 2
            self.blocks.append(nn.ModuleList(ResLayer(width, kernel) for _ in range(3)))
        self.act_post = AntiAliasAct(kernel)
        self.conv_post = nn.Conv1d(width, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(x)
        for up, layers in zip(self.ups, self.blocks, strict=True):
            x = up(x)
            x = sum(layer(x) for layer in layers) / len(layers)
        return torch.tanh(self.conv_post(self.act_post(x)))
