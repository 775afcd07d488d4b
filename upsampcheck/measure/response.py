"""Magnitude response and images of a stage from the multitone's DFT bins (no estimation).

Inputs are the rfft bins of one period of the stage's multitone response with the silence
response subtracted: ``U (C_in, N_in/2 + 1)`` at the input and ``V (C_out, N_out/2 + 1)`` at the
output, and the driven input bins ``q`` with their groups (:func:`.periodic.driven_bins`).

Definitions (all power ratios, summed over channels):

- per bin: ``in(q) = Σ_c |U_c[q]|²``, ``out(q) = Σ_o |V_o[q]|²``; for one input channel the
  response is exactly ``|H(q)|² = out(q) / in(q)``. For a multichannel layer each driven bin has
  one input channel, so ``out / in`` there is ``Σ_o |H_oc(q)|²`` for that bin's channel ``c``;
  the stage's response is ``Σ_g out_g / Σ_g in_g`` with each group's powers interpolated (in
  dB, between its own bins) onto every driven bin: for a single layer that is
  ``mean_c Σ_o |H_oc|²``, the white-noise power gain. Inside a multichannel stack a stage's
  input channels all carry every source group's bins (mixed by the stages before it): the
  same formula is then the gain for the signal that actually reaches it.
- the response is relative to its mean over the driven bins in 1–5 % of the band;
- the first image of bin ``q`` is output bin ``N_in − q``; its rejection
  ``out(N_in − q) / out(q)`` (0 dB: zero insertion alone), combined over groups as above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .multitone import REFERENCE_BAND

RESPONSE_POINTS = (0.25, 0.5, 0.75, 0.9)
"""Where the magnitude response is reported, as fractions of the input Nyquist."""
TINY = 1e-300
NEIGHBOURS = 3
REACHED = 1e-3
"""A driven bin counts only where its input power is above this fraction of the median's (−30
dB): below, the earlier stages have all but cancelled it (a zero of their response) and float
rounding would be read as response. Such bins are interpolated over."""


def channel_power(spectrum: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """``Σ_channels |spectrum[:, bins]|²`` (``spectrum`` complex, ``(C, bins)``)."""
    values = spectrum[:, bins]
    return (values.real**2 + values.imag**2).sum(0)


def combine(num: np.ndarray, den: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``Σ_g num_g / Σ_g den_g`` at every bin, each group's values interpolated (in dB) from its
    own bins onto all of them; with one group, simply ``num / den``."""
    labels = np.unique(groups)
    if len(labels) == 1:
        return num / np.maximum(den, TINY)
    where = np.arange(len(num))
    total_num, total_den = np.zeros(len(num)), np.zeros(len(num))
    for g in labels:
        mine = np.nonzero(groups == g)[0]
        total_num += np.exp(np.interp(where, mine, np.log(np.maximum(num[mine], TINY))))
        total_den += np.exp(np.interp(where, mine, np.log(np.maximum(den[mine], TINY))))
    return total_num / np.maximum(total_den, TINY)


@dataclass
class Response:
    """A stage's response and image curves on its driven input bins."""

    fractions: np.ndarray
    """Driven bins as fractions of the input Nyquist."""
    gain: np.ndarray
    """Power gain at each driven bin (not normalised)."""
    reference: float
    """Mean power gain over the driven bins in 1–5 % of the band (or the lowest bin)."""
    reference_bins: int
    first_image: np.ndarray
    """First-image power relative to the in-band bin, at each driven bin."""
    worst_image: np.ndarray
    """Loudest image of any order relative to the in-band bin, at each driven bin."""

    @property
    def response_db(self) -> np.ndarray:
        return 10 * np.log10(np.maximum(self.gain / self.reference, TINY))

    def at(self, fraction: float) -> float | None:
        """The response in dB at ``fraction`` of the input Nyquist: on a driven bin its value;
        between bins (e.g. across a grid bin, which carries no signal) a quadratic through the
        :data:`NEIGHBOURS` nearest bins on each side. None outside the reached bins (above the
        last bin the probe reached, or below the first): nothing is extrapolated."""
        f, r = self.fractions, self.response_db
        if len(f) == 0 or fraction > f[-1] + 1e-12 or fraction < f[0] - 1e-12:
            return None
        exact = np.nonzero(np.isclose(f, fraction, rtol=0, atol=1e-12))[0]
        if len(exact):
            return float(r[exact[0]])
        right = int(np.searchsorted(f, fraction))
        near = np.arange(right - NEIGHBOURS, right + NEIGHBOURS)
        near = near[(near >= 0) & (near < len(f))]
        if len(near) < 3:
            return float(np.interp(fraction, f, r))
        centre = f[near].mean()
        fit = np.polyfit(f[near] - centre, r[near], 2)
        return float(np.polyval(fit, fraction - centre))


def measure_response(
    u: np.ndarray, v: np.ndarray, n_in: int, bins: np.ndarray, groups: np.ndarray
) -> Response:
    """The response and images from the rfft bins ``u (C_in, ·)`` and ``v (C_out, ·)``."""
    n_out_half = v.shape[-1] - 1
    in_power = channel_power(u, bins)
    reached = in_power >= REACHED * np.median(in_power)
    bins, groups, in_power = bins[reached], groups[reached], in_power[reached]
    out_power = channel_power(v, bins)
    gain = combine(out_power, in_power, groups)
    first = combine(channel_power(v, n_in - bins), out_power, groups)
    worst = np.zeros(len(bins))
    for centre in range(n_in, n_out_half + n_in, n_in):
        for image in (centre - bins, centre + bins):
            ok = image <= n_out_half
            ratio = np.zeros(len(bins))
            ratio[ok] = channel_power(v, image[ok]) / np.maximum(out_power[ok], TINY)
            worst = np.maximum(worst, ratio)
    fractions = bins / (n_in / 2)
    low = (fractions >= REFERENCE_BAND[0]) & (fractions <= REFERENCE_BAND[1])
    reference = float(gain[low].mean()) if low.any() else float(gain[0])
    return Response(fractions, gain, max(reference, TINY), int(low.sum()), first, worst)


def response_points(response: Response) -> dict[str, float | None]:
    """The response at :data:`RESPONSE_POINTS`, in dB (None beyond the reached bins)."""
    return {str(p): response.at(p) for p in RESPONSE_POINTS}


def minus3db_point(fractions: np.ndarray, response_db: np.ndarray) -> float | None:
    """First frequency (fraction of the input Nyquist) where the response falls to −3 dB, or
    None when it stays above −3 dB up to the top driven bin."""
    below = np.nonzero(response_db <= -3.0)[0]
    if len(below) == 0:
        return None
    k = below[0]
    if k == 0:
        return float(fractions[0])
    f0, f1, r0, r1 = fractions[k - 1], fractions[k], response_db[k - 1], response_db[k]
    return float(f0 + (f1 - f0) * (-3.0 - r0) / (r1 - r0))


def transfer_functions(
    u: np.ndarray, v: np.ndarray, bins: np.ndarray, n_in: int, purity: float = 1e-12
) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] | None:
    """Every ``|H_oc|`` in dB on its input channel's own bins, as ``{(o, c): (fractions, dB)}``,
    when each driven bin carries exactly one input channel (a multichannel layer driven by the
    interleaved multitone); None when the input channels are mixed."""
    power = u[:, bins].real ** 2 + u[:, bins].imag ** 2
    owner = power.argmax(0)
    others = power.sum(0) - power.max(0)
    if (others > purity * power.max(0)).any():
        return None
    out = {}
    for c in range(u.shape[0]):
        mine = owner == c
        if not mine.any():
            continue
        for o in range(v.shape[0]):
            ratio = np.abs(v[o, bins[mine]]) ** 2 / np.maximum(power[c, mine], TINY)
            out[(o, c)] = (bins[mine] / (n_in / 2), 10 * np.log10(np.maximum(ratio, TINY)))
    return out
