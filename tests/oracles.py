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


def dtft_power(kernel: np.ndarray, f_cycles: np.ndarray) -> np.ndarray:
    """``|Σ h[n] e^{−j2π f n}|²`` of ``kernel`` at ``f_cycles`` (cycles per sample), float64."""
    n = np.arange(len(kernel))
    return np.abs(np.exp(-2j * np.pi * np.outer(f_cycles, n)) @ kernel) ** 2


def response_re_band_db(kernel: np.ndarray, stride: int, fractions, band=None) -> np.ndarray:
    """|H|² of a kernel applied after zero insertion by ``stride`` at ``fractions`` of the input
    Nyquist, in dB relative to its mean over 1–5 % of the band (the tool's reference): over the
    bins ``band`` (fractions) the measurement averaged, else over the continuous band."""
    band = np.linspace(0.01, 0.05, 2001) if band is None else np.asarray(band)
    reference = dtft_power(kernel, band / (2 * stride)).mean()
    power = dtft_power(kernel, np.asarray(fractions, dtype=float) / (2 * stride))
    return 10 * np.log10(power / reference)


def image_rejection_db(kernel: np.ndarray, stride: int, tone_hz: float, fs_in: float) -> float:
    """|H(fs_in − f)|² / |H(f)|² in dB for the kernel at the output rate ``stride · fs_in``."""
    fs_out = stride * fs_in
    pair = dtft_power(kernel, np.array([(fs_in - tone_hz) / fs_out, tone_hz / fs_out]))
    return float(10 * np.log10(pair[0] / pair[1]))


def subpixel_kernel(weight: np.ndarray, stride: int) -> np.ndarray:
    """The transposed-conv kernel of a 1-channel subpixel layer, ``weight (S, 1, L)``: output
    sample ``S n + r`` is ``Σ_j w_r[j] x[n + j]``, i.e. ``h[r + S (L − 1 − j)] = w_r[j]``."""
    length = weight.shape[-1]
    h = np.zeros(stride * length)
    for r in range(stride):
        for j in range(length):
            h[r + stride * (length - 1 - j)] = weight[r, 0, j]
    return h


def periodic_silence(layers: list[tuple[str, np.ndarray, float, int]]) -> np.ndarray:
    """One period of a single-channel linear stack's steady-state response to silence, in
    float64: each transposed conv ``("transposed", w, b, S)`` zero-inserts by ``S`` and
    convolves circularly with ``w``; each conv ``("conv", w, b, 1)`` cross-correlates
    circularly (``y[n] = Σ w[k] x[n + k]``); each adds its bias. Zeros go in, so only the
    biases, and what the later layers make of them, come out."""
    x = np.zeros(1)
    for kind, w, b, stride in layers:
        if kind == "transposed":
            u = np.zeros(len(x) * stride)
            u[::stride] = x
            h = np.zeros(len(u))
            for k, v in enumerate(w):
                h[k % len(u)] += v
        else:
            u, h = x, np.zeros(len(x))
            for k, v in enumerate(w):
                h[(-k) % len(u)] += v
        x = np.real(np.fft.ifft(np.fft.fft(u) * np.fft.fft(h))) + b
    return x


def period_lines_db(period: np.ndarray, fs: float) -> dict[float, float]:
    """Line powers (dB, absolute) of a periodic signal given one period: ``2 |X_m / P|²`` at
    ``m fs / P`` (``|X_m / P|²`` at the Nyquist), for lines above −200 dB."""
    n = len(period)
    spectrum = np.fft.fft(period) / n
    lines = {}
    for m in range(1, n // 2 + 1):
        power = abs(spectrum[m]) ** 2 * (1 if 2 * m == n else 2)
        if power > 1e-20:
            lines[m * fs / n] = 10 * math.log10(power)
    return lines


def images(freq_hz: float, fs_in: float, factor: float) -> list[float]:
    """Where an input component at ``freq_hz`` appears at the output of an upsampler, one
    image at a time (the reference for :func:`upsampcheck.measure.attribution.image_of`)."""
    nyquist = fs_in * factor / 2
    found = []
    for k in range(int(factor) + 1):
        for image in (k * fs_in - freq_hz, k * fs_in + freq_hz):
            if 0 <= image <= nyquist + 1e-9:
                found.append(image)
    return found


def excited_bins(period: int, groups: int = 1) -> list[np.ndarray]:
    """The multitone's excited bins (odd, ``3 ≤ k ≤ M/2 − 3``) dealt to ``groups`` interleaved
    groups: bin ``k`` belongs to group ``((k − 1) / 2) mod G`` (docs/method.md, The probe)."""
    k = np.arange(3, period // 2 - 2, 2)
    return [k[((k - 1) // 2) % groups == g] for g in range(groups)]


def kernel_dtft(weight: np.ndarray, f_cycles: np.ndarray) -> np.ndarray:
    """``H_oc(f) = Σ_n w[c, o, n] e^{−j2π f n}`` of a ``(C_in, C_out, L)`` kernel, ``(F, C_in,
    C_out)`` complex, at ``f_cycles`` cycles per output sample."""
    n = np.arange(weight.shape[-1])
    phase = np.exp(-2j * np.pi * np.outer(np.asarray(f_cycles, dtype=float), n))
    return np.einsum("fn,ion->fio", phase, weight)


def driven_signal_gain(weight: np.ndarray, stride: int, period: int, groups: int) -> float:
    """The tool's signal level (output power on the driven bins) of zero insertion by
    ``stride`` then the kernel ``weight (C_in, C_out, L)``, per unit input RMS², for the
    multitone of ``period`` samples: input channel ``c`` drives bins ``E_{c mod G}`` with power
    ``1 / |E|`` each; bin ``k``'s output power over the one-sided output band is
    ``Σ_j |H_oc((k/M + j) / S)|² / S²`` (its ``S`` images), averaged over output channels."""
    c_in, c_out, _ = weight.shape
    bins = excited_bins(period, groups)
    total = 0.0
    for c in range(c_in):
        k = bins[c % groups]
        f = ((k[:, None] / period + np.arange(stride)[None, :]) / stride).ravel()
        h = kernel_dtft(weight[c : c + 1], f)[:, 0, :]  # (F, C_out)
        total += (np.abs(h) ** 2).sum() / (len(k) * stride**2)
    return total / c_out


def driven_dc_lines(
    weight: np.ndarray, stride: int, fs_out: float, period: int, groups: int
) -> dict[float, float]:
    """DC on every input channel (the level of the multitone's RMS) through zero insertion and
    ``weight``: the line at ``m fs_in`` has one-sided power ``2 |Σ_c W_oc,m|² / S²`` (the
    Nyquist line not doubled), averaged over outputs, relative to
    :func:`driven_signal_gain` (the tool's definition); lines below −200 dB left out."""
    gain = driven_signal_gain(weight, stride, period, groups)
    levels = {}
    for m in range(1, stride // 2 + 1):
        w = kernel_dtft(weight, np.array([m / stride]))[0].sum(0)  # Σ_c W_oc,m: (C_out,)
        scale = 1.0 if 2 * m == stride else 2.0
        power = scale * float((np.abs(w) ** 2).mean()) / stride**2
        if power > 1e-20 * gain:
            levels[m * fs_out / stride] = 10 * math.log10(power / gain)
    return levels


def biased_layers(strides: tuple[int, ...]) -> list[dict]:
    """A stack spec's ``layer`` list: transposed convs (length twice the stride, with bias)
    with a biased length-3 conv between each two."""
    layers = []
    for i, s in enumerate(strides):
        layers.append({"type": "transposed", "stride": s, "length": 2 * s, "bias": True})
        if i < len(strides) - 1:
            layers.append({"type": "conv", "length": 3, "bias": True})
    return layers
