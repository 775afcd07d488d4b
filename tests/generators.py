"""A HiFi-GAN-like generator built in the test (random init, no weights downloaded), and a
mel-like input made from the speech-like signal of :mod:`speechlike`."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TinyHifiGan(nn.Module):
    """HiFi-GAN's shape at small width: a kernel-7 input conv from 80 mel bands, then one
    stage per factor in ``strides`` (LeakyReLU 0.1, ConvTranspose1d with kernel ``2s`` and
    padding ``s/2``, then a kernel-3 residual conv), a kernel-7 output conv and tanh. Hop
    length = the product of the strides (256 for 8, 8, 2, 2)."""

    def __init__(self, strides=(8, 8, 2, 2), channels: int = 64, mels: int = 80) -> None:
        super().__init__()
        self.pre = nn.Conv1d(mels, channels, 7, padding=3)
        self.ups = nn.ModuleList()
        self.res = nn.ModuleList()
        width = channels
        for s in strides:
            self.ups.append(nn.ConvTranspose1d(width, width // 2, 2 * s, s, padding=s // 2))
            width //= 2
            self.res.append(nn.Conv1d(width, width, 3, padding=1))
        self.post = nn.Conv1d(width, 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.pre(mel)
        for up, res in zip(self.ups, self.res, strict=True):
            x = up(nn.functional.leaky_relu(x, 0.1))
            x = x + res(nn.functional.leaky_relu(x, 0.1))
        return torch.tanh(self.post(nn.functional.leaky_relu(x, 0.1)))


def log_mel(audio: np.ndarray, fs: float, hop: int = 256, mels: int = 80) -> torch.Tensor:
    """``(1, mels, frames)`` natural-log mel spectrogram (floor 1e-5, as HiFi-GAN's recipe)."""
    import torchaudio

    transform = torchaudio.transforms.MelSpectrogram(
        sample_rate=int(fs), n_fft=1024, hop_length=hop, n_mels=mels, f_min=0.0, f_max=fs / 2,
        power=1.0, center=True,
    )  # fmt: skip
    spec = transform(torch.as_tensor(audio, dtype=torch.float32)[None])
    return torch.log(torch.clamp(spec, min=1e-5))


def generated(audio: np.ndarray, fs: float, seed: int = 0) -> np.ndarray:
    """The random-init generator's output for the log-mel of ``audio`` (same length)."""
    torch.manual_seed(seed)
    model = TinyHifiGan().eval()
    with torch.no_grad():
        out = model(log_mel(audio, fs))[0, 0].numpy().astype(np.float64)
    return out[: len(audio)]
