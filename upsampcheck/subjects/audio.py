"""Audio files as subjects: open and validate them, and stream their samples in frames.

Files are read with soundfile (libsndfile): WAV, FLAC and the other formats it decodes, any
channel count, 16/24/32-bit integer or float samples, always delivered as float (full scale
±1). Nothing here holds a whole decoded file: :func:`scan` and :func:`frames` read blocks of a
few hundred thousand samples at a time, so memory does not grow with the file's length.

Every problem with a file is a one-line :class:`~upsampcheck.errors.UsageError` that names it.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError

BLOCK_SAMPLES = 1 << 18
"""Samples per channel read at a time (1 MiB per channel as float32)."""
LOSSY = {"MP3", "OGG", "MPEG"}


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: ``frames`` samples per channel at ``sample_rate`` Hz."""

    path: Path
    format: str
    subtype: str
    sample_rate: float
    channels: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    @property
    def lossy(self) -> bool:
        return self.format in LOSSY or self.subtype in ("VORBIS", "OPUS", "MPEG_LAYER_III")


@dataclass
class Scan:
    """The first pass over a file: per-frame power (for the quiet passages) and the totals.

    ``frame_power[i]``: mean power per sample of frame ``i`` (samples ``[i·hop, i·hop + n)``,
    each channel's frame mean removed, averaged over channels). ``dc``: each channel's mean;
    ``power``: the mean square over all samples and channels; ``peak``: the largest |sample|.
    """

    frame_power: np.ndarray
    dc: np.ndarray
    power: float
    peak: float


def open_info(path: Path) -> AudioInfo:
    """Validate ``path`` and read its header.

    Refused with a one-line :class:`UsageError` naming the file: a missing path, a folder, a
    FIFO or device (opening one could block forever), an empty file, an unreadable one, a file
    libsndfile cannot decode, a non-positive sample rate, no samples.
    """
    import soundfile as sf

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path}: is a directory, not an audio file")
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path}: not a regular file (a FIFO, socket or device); give a file")
    if os.path.getsize(path) == 0:
        raise UsageError(f"{path}: empty file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{path}: cannot read: permission denied")
    try:
        with sf.SoundFile(str(path)) as fh:
            info = AudioInfo(
                path, fh.format, fh.subtype, float(fh.samplerate), fh.channels, fh.frames
            )
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = " ".join(str(exc).split()).removeprefix(f"Error opening '{path}': ")
        raise UsageError(f"{path}: not an audio file soundfile can read ({reason})") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not (math.isfinite(info.sample_rate) and info.sample_rate > 0):
        raise UsageError(f"{path}: sample rate {info.sample_rate:g} Hz is not positive")
    if info.channels < 1 or info.frames <= 0:
        raise UsageError(f"{path}: holds no samples")
    return info


def blocks(info: AudioInfo, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """``(samples, channels)`` float32 blocks of ``info``'s file from ``start`` to ``stop``;
    a sample that is not finite is a :class:`UsageError` giving its time and channel."""
    import soundfile as sf

    position = start
    try:
        with sf.SoundFile(str(info.path)) as fh:
            fh.seek(start)
            remaining = (info.frames if stop is None else stop) - start
            while remaining > 0:
                block = fh.read(min(BLOCK_SAMPLES, remaining), dtype="float32", always_2d=True)
                if len(block) == 0:
                    raise UsageError(
                        f"{info.path}: ends after {position} of the {info.frames} samples its "
                        "header announces (truncated?)"
                    )
                if not math.isfinite(float(block.sum(dtype=np.float64))) and not (
                    np.isfinite(block).all()
                ):
                    row, channel = np.argwhere(~np.isfinite(block))[0]
                    at = position + int(row)
                    raise UsageError(
                        f"{info.path}: sample {at} ({at / info.sample_rate:.3f} s, channel "
                        f"{int(channel) + 1}) is {block[row, channel]}; samples must be finite"
                    )
                position += len(block)
                remaining -= len(block)
                yield block
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise UsageError(f"{info.path}: cannot decode: {' '.join(str(exc).split())}") from None


def scan(info: AudioInfo, n: int, hop: int) -> Scan:
    """Pass one: each frame's power (frames of ``n`` samples every ``hop = n / 2``), the DC,
    power and peak of the whole file; checks every sample is finite."""
    if n != 2 * hop:
        raise ValueError("frames overlap by half: n must be 2 * hop")
    sums, squares = [], []  # per hop-block and channel: Σx and Σx²
    peak = 0.0
    carry = np.zeros((0, info.channels), dtype=np.float32)
    for block in blocks(info):
        peak = max(peak, float(block.max()), -float(block.min()))
        data = np.concatenate([carry, block]) if len(carry) else block
        whole = len(data) // hop * hop
        hops = data[:whole].reshape(-1, hop, info.channels)
        sums.append(hops.sum(1, dtype=np.float64))
        squares.append(np.einsum("ijk,ijk->ik", hops, hops, dtype=np.float64))
        carry = data[whole:]
    s1 = np.concatenate(sums) if sums else np.zeros((0, info.channels))
    s2 = np.concatenate(squares) if squares else np.zeros((0, info.channels))
    tail = carry.astype(np.float64)
    total = s1.sum(0) + tail.sum(0)
    total_sq = float(s2.sum() + np.square(tail).sum())
    f1, f2 = s1[:-1] + s1[1:], s2[:-1] + s2[1:]
    frame_power = ((f2 - f1**2 / n) / n).mean(-1) if len(f1) else np.zeros(0)
    count = info.frames * info.channels
    return Scan(np.maximum(frame_power, 0.0), total / info.frames, total_sq / count, peak)


def frames(info: AudioInfo, n: int, hop: int, batch: int = 32) -> Iterator[np.ndarray]:
    """Pass two: ``(F, channels, n)`` float64 batches of consecutive frames (``F <= batch``),
    frame ``i`` starting at sample ``i·hop``; a tail shorter than a frame is not returned."""
    carry = np.zeros((0, info.channels), dtype=np.float32)
    for block in blocks(info):
        data = np.concatenate([carry, block]) if len(carry) else block
        count = (len(data) - n) // hop + 1 if len(data) >= n else 0
        for first in range(0, count, batch):
            last = min(first + batch, count)
            view = np.lib.stride_tricks.sliding_window_view(
                data[first * hop : (last - 1) * hop + n], n, axis=0
            )[::hop]
            yield np.ascontiguousarray(view, dtype=np.float64)  # (F, channels, n)
        carry = data[count * hop :]


def read_excerpt(info: AudioInfo, start: int, length: int) -> np.ndarray:
    """``(channels, length)`` float32 samples from ``start`` (clipped to the file)."""
    start = max(0, min(start, info.frames - 1))
    stop = min(info.frames, start + length)
    parts = list(blocks(info, start, stop))
    data = np.concatenate(parts) if parts else np.zeros((0, info.channels), np.float32)
    return np.ascontiguousarray(data.T)
