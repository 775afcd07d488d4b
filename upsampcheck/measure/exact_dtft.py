"""The exact DTFT of windowed frames at every candidate grid frequency ``p·fs/q``, by folding
(the formulas are in :mod:`.coherence`'s docstring).

``e^{−2πi p s/q}`` has period ``q`` in the absolute sample index ``s``, so a frame's DTFT at
``p·fs/q`` is one bin of the FFT of the frame folded modulo ``q``, or modulo any multiple ``L``
of it: one fold and one FFT of length ``L`` per maximal 7-smooth ``L <= K_max`` give every
candidate. Folding a frame of ``size`` samples costs ``size`` additions per ``L``; folding
first modulo a common multiple ``H`` of several ``L`` ("hub", :func:`fold_plan`) costs
``size`` once and then ``H`` per ``L``, about 0.6 of the additions in all.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from .grid import PRIMES, smooth_numbers


@dataclass(frozen=True)
class Candidates:
    """The distinct frequencies ``p·fs/q`` tested, sorted by frequency, and how to compute
    them: ``groups[i] = (L, rfft bins p·L/q, candidate indices)``."""

    sample_rate: float
    num: np.ndarray
    den: np.ndarray
    weights: np.ndarray
    groups: list[tuple[int, np.ndarray, np.ndarray]]
    cache: dict = field(default_factory=dict, compare=False, repr=False)
    """Per hop: the phase turns of :func:`align` (computed once)."""

    @property
    def freqs_hz(self) -> np.ndarray:
        return self.sample_rate * self.num / self.den

    def __len__(self) -> int:
        return len(self.num)

    def grid_chance(self, factor: int) -> float:
        """The share of the candidates on multiples of ``fs / factor`` (``q`` divides
        ``factor``: ``⌊factor/2⌋`` of them): the chance that a line locked at a random
        candidate lies on that grid."""
        return min(1.0, (factor // 2) / len(self.num))


def candidates(sample_rate: float, k_max: int) -> Candidates:
    """Every reduced ``p/q`` with ``q`` 7-smooth in ``2 .. k_max`` (see the module docstring),
    ordered by the modulus ``L`` that computes them (the statistics are per candidate)."""
    ks = smooth_numbers(k_max)
    harmonic = sum(1 / r for r in range(1, len(ks) + 1))
    moduli = [k for k in ks if all(k * p > k_max for p in PRIMES)]
    rows: list[tuple[int, int, int, float]] = []  # (modulus, p, q, weight)
    for rank, q in enumerate(ks, start=1):
        ps = [p for p in range(1, q // 2 + 1) if math.gcd(p, q) == 1]
        owner = next(m for m in moduli if m % q == 0)
        rows += [(owner, p, q, 1 / (rank * harmonic * len(ps))) for p in ps]
    rows.sort(key=lambda row: (row[0], row[1] / row[2]))
    owner_a = np.array([row[0] for row in rows])
    num = np.array([row[1] for row in rows])
    den = np.array([row[2] for row in rows])
    groups = []
    for m in sorted(set(owner_a.tolist())):
        index = np.flatnonzero(owner_a == m)  # contiguous: rows are sorted by modulus
        groups.append((m, (num[index] * (m // den[index])).astype(np.int32), index))
    weights = np.array([row[3] for row in rows])
    return Candidates(float(sample_rate), num, den, weights, groups)


def fold(frames: np.ndarray, modulus: int) -> np.ndarray:
    """``(F, modulus)``: each row of ``frames`` summed modulo ``modulus`` (by column index)."""
    count, size = frames.shape
    whole = size // modulus
    folded = frames[:, : whole * modulus].reshape(count, whole, modulus).sum(1)
    rest = size - whole * modulus
    if rest:
        folded[:, :rest] += frames[:, whole * modulus :]
    return folded


@functools.lru_cache(maxsize=16)
def fold_plan(moduli: tuple[int, ...], size: int) -> tuple[tuple[int | None, tuple[int, ...]], ...]:
    """Which moduli to fold through a common multiple ("hub") first: folding a frame of
    ``size`` modulo a hub ``H`` costs ``size`` additions, and then each of its moduli only
    ``H``. Greedy: the 7-smooth hub between ``max(moduli)`` and ``size/2`` that saves most,
    until none saves; ``(hub or None, group indices)``. Folding through a hub gives the same
    sums (``H`` is a multiple of the modulus), about 0.6 of the additions."""
    left = set(range(len(moduli)))
    hubs = [h for h in smooth_numbers(size // 2) if h >= max(moduli, default=size)]
    plan = []
    while left:
        best = None
        for hub in hubs:
            members = tuple(i for i in sorted(left) if hub % moduli[i] == 0)
            gain = len(members) * size - (size + len(members) * hub)
            if members and gain > 0 and (best is None or gain > best[0]):
                best = (gain, hub, members)
        if best is None:
            break
        plan.append((best[1], best[2]))
        left -= set(best[2])
    if left:
        plan.append((None, tuple(sorted(left))))
    return tuple(plan)


def frame_dtft(frames: np.ndarray, starts: np.ndarray, cands: Candidates) -> np.ndarray:
    """``(F, M)`` complex64 ``Y_j`` at every candidate for windowed frames ``(F, n)`` that
    start at absolute samples ``starts``: fold modulo each ``L`` (through hubs,
    :func:`fold_plan`), FFT, then turn each candidate by ``e^{−2πi p (start mod q) / q}``
    (:func:`align`: the fold was by the index within the frame)."""
    count, n = frames.shape
    out = np.empty((count, len(cands)), dtype=np.complex64)
    plan = fold_plan(tuple(group[0] for group in cands.groups), n)
    for hub, members in plan:
        source = frames if hub is None else fold(frames, hub)
        for g in members:
            modulus, bins, index = cands.groups[g]  # each group's candidates are contiguous
            spectrum = np.fft.rfft(fold(source, modulus), axis=1)
            out[:, index[0] : index[-1] + 1] = spectrum[:, bins]
    align(out, cands, starts)
    return out


def align(out: np.ndarray, cands: Candidates, starts: np.ndarray) -> None:
    """Turn ``out[j, m]`` by ``e^{−2πi p (start_j mod q) / q}``, in place. Frames at a constant
    hop ``h`` (the usual case) take the first frame's factor times the powers of
    ``e^{−2πi p (h mod q) / q}``, cached; any other starts are computed one by one."""
    starts = np.asarray(starts, dtype=np.int64)
    out *= _turn(cands, int(starts[0]))[None, :]
    if len(starts) == 1:
        return
    hop = int(starts[1] - starts[0])
    if hop > 0 and np.all(np.diff(starts) == hop):
        out *= _powers(cands, hop, len(starts))
        return
    for j in range(1, len(starts)):
        out[j] *= _turn(cands, int(starts[j] - starts[0]))


def _turn(cands: Candidates, start: int) -> np.ndarray:
    """``e^{−2πi p (start mod q) / q}`` for every candidate (complex64)."""
    return _unit((cands.num * (start % cands.den)) % cands.den, cands.den)


def _unit(turns: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``e^{−2πi turns/den}`` as complex64, computed in float32 (no complex128 temporary)."""
    angle = (turns.astype(np.float32) / den.astype(np.float32)) * np.float32(-2 * np.pi)
    out = np.empty(angle.shape, dtype=np.complex64)
    out.real = np.cos(angle)
    out.imag = np.sin(angle)
    return out


def _powers(cands: Candidates, hop: int, count: int) -> np.ndarray:
    """``(count, M)``: ``e^{−2πi p (j·h mod q) / q}`` for ``j = 0 .. count−1`` (cached on
    ``cands``)."""
    cached = cands.cache.get(hop)
    if cached is None or len(cached) < count:
        rows = count  # the batch size (coherence.PAIRS), grown when a longer batch comes
        cached = np.empty((rows, len(cands)), dtype=np.complex64)
        for j in range(rows):  # row by row: no (rows, M) integer temporaries
            cached[j] = _turn(cands, j * hop)
        cands.cache[hop] = cached
    return cached[:count]
