"""Before/after figures of a repair, from the same probes and measurements as ``model``.

- **Lines**: every line of a repaired stage and of the output, before and after (the check's
  own exact DFT bins; levels re the signal level), matched by probe and frequency. A line
  absent after the repair lies below the measurement's floor: 10 dB under the round-off
  floor, about −130 dB re signal.
- **Kernel change**: ``10 log10(‖Δ‖² / ‖w‖²)`` over the stage's taps (and subpixel biases).
- **Response change, measured**: the stage's power gain per driven bin as the check measured
  it in the model (the model's own signal at the stage's input, all channels), after over
  before (:func:`measured_change_curve`): its largest magnitude and its RMS over the band.
- **Response change, kernel**: the stage's power response on its input band, computed exactly
  from its kernels with every input channel driven independently:
  ``G(f) = Σ_{in, out} |H(f)|²``, where a transposed conv's ``H`` is its kernel's DTFT at
  ``f/fs_out`` and a subpixel conv's is ``(1/s) Σ_r K_r(f/fs_in) e^{-2πi f r/fs_out}``
  (``K_r``: phase ``r``'s sub-kernel). The change ``10 log10(G'/G)`` on
  :data:`RESPONSE_POINTS` evenly spaced frequencies ``(j + ½)/N`` of the input Nyquist: its
  largest magnitude and its RMS.
- **Output SNR**: the model's output for a multitone of the check's design (same seed and
  level, one period over the whole input), before vs after: ``10 log10(Σ y² / Σ (y' − y)²)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..measure.probes import PROBES
from .apply import StageTie

RESPONSE_POINTS = 512
"""Frequencies on the input band at which the response change is evaluated."""
GONE_DB = -130.0
"""A line no longer found lies below this level re signal (the line finder's round-off floor
of −140 dB plus its 10 dB prominence)."""


def band_fractions(points: int = RESPONSE_POINTS) -> np.ndarray:
    """``(j + ½)/points`` for ``j = 0 .. points-1``: fractions of the input Nyquist."""
    return (np.arange(points) + 0.5) / points


def stage_power_response(tie: StageTie, which: str, fractions: np.ndarray) -> np.ndarray:
    """``G(f) = Σ |H_{oc}(f)|²`` of the stage's kernels ``which`` (``"before"``/``"after"``)
    at ``fractions`` of its input Nyquist (float64)."""
    w = (tie.before if which == "before" else tie.after).numpy()
    s = tie.stride
    omega = np.pi * fractions  # input-rate radians
    if tie.kind == "transposed":
        k = np.arange(w.shape[-1]) * tie.dilation
        basis = np.exp(-1j * np.outer(k, omega / s))  # (K, F)
        h = w.reshape(-1, w.shape[-1]) @ basis
        return (np.abs(h) ** 2).sum(0)
    k = np.arange(w.shape[-1])
    sub = w.reshape(-1, s, w.shape[1], w.shape[2]) @ np.exp(1j * np.outer(k, omega))  # (C,s,Ci,F)
    shift = np.exp(-1j * np.outer(np.arange(s), omega / s))  # (s, F)
    h = (sub * shift[None, :, None, :]).sum(1) / s
    return (np.abs(h) ** 2).sum((0, 1))


def response_change(tie: StageTie, points: int = RESPONSE_POINTS) -> tuple[float, float]:
    """``(max |ΔdB|, RMS ΔdB)`` of the stage's power response over its input band."""
    f = band_fractions(points)
    before = stage_power_response(tie, "before", f)
    after = stage_power_response(tie, "after", f)
    tiny = 1e-300
    change = 10 * np.log10(np.maximum(after, tiny) / np.maximum(before, tiny))
    return float(np.abs(change).max()), float(np.sqrt(np.mean(change**2)))


def measured_change_curve(before, after) -> tuple[np.ndarray, np.ndarray] | None:
    """The stage's response change as the check measured it on the model's own signal: its
    absolute power gain per driven bin (output power over input power, every output and input
    channel) after over before, in dB: ``(fractions of the input Nyquist, ΔdB)``. None when
    the two measurements did not drive the same bins."""
    (f0, r0), (f1, r1) = before.response_curve, after.response_curve
    if len(f0) != len(f1) or not np.allclose(f0, f1, rtol=0, atol=1e-12) or not len(f0):
        return None
    shift = 10 * np.log10(after.reference_gain / before.reference_gain)
    return np.asarray(f0), np.asarray(r1) - np.asarray(r0) + shift


def output_snr(
    before: torch.nn.Module, after: torch.nn.Module, probe: torch.Tensor, method: str
) -> float:
    """``10 log10(Σ y² / Σ (y' − y)²)`` of the two modules' outputs for ``probe`` (one
    example, batched here), in dB; +inf when they agree exactly."""
    from ..subjects.discover import _analysed

    def run(module: torch.nn.Module) -> np.ndarray:
        param = next(module.parameters(), None)
        x = probe.unsqueeze(0)
        if param is not None:
            x = x.to(param.device, param.dtype if param.is_floating_point() else x.dtype)
        with torch.no_grad():
            out = getattr(module, method)(x)
        return _analysed(out)[1].detach().double().cpu().numpy()

    y, y2 = run(before), run(after)
    error = float(((y2 - y) ** 2).sum())
    return math.inf if error == 0 else float(10 * np.log10(float((y**2).sum()) / error))


def multitone_input(shape: tuple[int, ...], fs: float, opts) -> torch.Tensor:
    """A multitone of the check's design for one example of ``shape`` (same seed and level,
    one period over the whole input)."""
    from ..model.taps import probe_batch

    return probe_batch(shape, fs, opts)[PROBES.index("noise")]


def line_rows(before: list, after: list) -> list[dict]:
    """Lines before and after matched by probe and frequency: ``{probe, freq_hz, origin,
    origin_before, before_db, after_db}`` (``None``: not found on that side; ``origin`` is who
    makes the line as found after the repair, where it is still there)."""
    rows: dict[tuple[str, float], dict] = {}
    for side, lines in (("before_db", before), ("after_db", after)):
        for line in lines:
            key = (line.probe, round(line.freq_hz, 3))
            row = rows.setdefault(
                key,
                {"probe": line.probe, "freq_hz": line.freq_hz, "origin": line.origin,
                 "origin_before": line.origin if side == "before_db" else None,
                 "before_db": None, "after_db": None},
            )  # fmt: skip
            row[side] = line.level_db
            if side == "after_db":  # who makes a line that is still there, as found now
                row["origin"] = line.origin
    return sorted(rows.values(), key=lambda r: (r["probe"], r["freq_hz"]))


def drop_db(row: dict) -> float | None:
    """How much lower a line is after the repair (at least, when it is gone)."""
    if row["before_db"] is None:
        return None
    after = GONE_DB if row["after_db"] is None else row["after_db"]
    return row["before_db"] - after
