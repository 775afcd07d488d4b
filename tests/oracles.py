"""The exact formulas of docs/method.md, written independently of the package, for oracles."""

from __future__ import annotations

import math

import numpy as np


def db(x: float) -> float:
    return 20 * math.log10(x)


def dc_line_levels(weight: np.ndarray, stride: int, fs_out: float) -> dict[float, float]:
    """The polyphase formula: a transposed conv with kernel ``weight (C_in, C_out, L)`` driven
    by DC on every input gives, at ``m fs_in``, lines of RMS ``√2 |W_m| / S`` (``|W_m| / S`` at
    Nyquist) per unit DC; relative to the white-noise gain ``sqrt(Σ w² / (S C_out))``. Lines
    whose ``W_m`` vanishes are left out."""
    c_in, c_out, length = weight.shape
    sums = np.zeros((c_out, stride))
    for k in range(length):
        sums[:, k % stride] += weight[:, :, k].sum(0)
    spectrum = np.fft.fft(sums, axis=-1)
    noise_gain = math.sqrt((weight**2).sum() / (stride * c_out))
    levels = {}
    for m in range(1, stride // 2 + 1):
        scale = 1.0 if 2 * m == stride else math.sqrt(2)
        line_rms = scale * math.sqrt((np.abs(spectrum[:, m]) ** 2).mean()) / stride
        if line_rms > 1e-9:
            levels[m * fs_out / stride] = db(line_rms / noise_gain)
    return levels


def kernel_response_db(kernel: np.ndarray, stride: int, fraction: float) -> float:
    """|H| of an interpolation kernel (applied after zero insertion) at ``fraction`` of the
    input Nyquist, relative to DC."""
    f = fraction / (2 * stride)  # cycles per output sample
    h = abs(np.sum(kernel * np.exp(-2j * np.pi * f * np.arange(len(kernel)))))
    return db(h / abs(kernel.sum()))


def box(stride: int) -> np.ndarray:
    """Nearest-neighbour interpolation's kernel."""
    return np.ones(stride)


def half_pixel_triangle(stride: int) -> np.ndarray:
    """PyTorch's linear interpolation with align_corners=False: ``1 - |j + ½ - S| / S``."""
    j = np.arange(2 * stride)
    return 1 - np.abs(j + 0.5 - stride) / stride
