"""Audio files as subjects: open and validate them, and stream their samples in frames.

Files are read with soundfile (libsndfile): WAV, FLAC, MP3, Ogg Vorbis, Opus and the other
formats it decodes, any channel count, 16/24/32-bit integer or float samples, always delivered
as float (full scale ±1). Nothing here holds a whole decoded file: :func:`scan` and
:func:`frames` read blocks of at most :data:`BLOCK_VALUES` values at a time, so memory grows
neither with the file's length nor with its channel count.

The decoded length is what counts: a header's sample count is an estimate for MP3 (and
unknown for a FLAC written by a streaming encoder); :func:`scan` counts the samples, and a
header that announced another count is a note, not an error.

Every problem with a file is a one-line :class:`~upsampcheck.errors.UsageError` that names it.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..paths import shown

BLOCK_SAMPLES = 1 << 18
"""Samples per channel read at a time (1 MiB per channel as float32) ..."""
BLOCK_VALUES = 1 << 21
"""... at most this many values in all (8 MiB as float32), so many channels read fewer."""
BATCH_VALUES = 1 << 22
"""A batch of frames holds at most this many values (32 MiB as float64)."""
UNKNOWN = 1 << 62
"""libsndfile reports a FLAC of unknown length as 2⁶³ − 1 samples."""
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
    seekable: bool = True
    """False for a file of unknown length (libsndfile cannot seek in it)."""

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    @property
    def length_known(self) -> bool:
        return 0 < self.frames < UNKNOWN

    @property
    def block(self) -> int:
        """Samples per channel read at a time."""
        return max(1 << 12, min(BLOCK_SAMPLES, BLOCK_VALUES // self.channels))

    @property
    def lossy(self) -> bool:
        return self.format in LOSSY or self.subtype in ("VORBIS", "OPUS", "MPEG_LAYER_III")


@dataclass
class Scan:
    """The first pass over a file: per-frame power (for the quiet passages) and the totals.

    ``frame_power[i]``: mean power per sample of frame ``i`` (samples ``[i·hop, i·hop + n)``,
    each channel's frame mean removed, averaged over channels). ``dc``: each channel's mean;
    ``power``: the mean square over all samples and channels; ``peak``: the largest |sample|;
    ``samples``: the decoded length per channel.
    """

    frame_power: np.ndarray
    dc: np.ndarray
    power: float
    peak: float
    samples: int


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
        raise UsageError(f"{shown(path)}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{shown(path)}: cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{shown(path)}: is a directory, not an audio file")
    if not stat.S_ISREG(mode):
        raise UsageError(
            f"{shown(path)}: not a regular file (a FIFO, socket or device); give a file"
        )
    if os.path.getsize(path) == 0:
        raise UsageError(f"{shown(path)}: empty file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{shown(path)}: cannot read: permission denied")
    try:
        with sf.SoundFile(os.fsencode(path)) as fh:
            info = AudioInfo(
                path, fh.format, fh.subtype, float(fh.samplerate), fh.channels, fh.frames,
                seekable=0 < fh.frames < UNKNOWN,
            )  # fmt: skip
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        reason = re.sub(r"^Error opening .*?: ", "", reason)
        name = shown(path)
        raise UsageError(f"{name}: not an audio file soundfile can read ({reason})") from None
    except OSError as exc:
        raise UsageError(f"{shown(path)}: cannot read: {exc.strerror or exc}") from None
    if not (math.isfinite(info.sample_rate) and info.sample_rate > 0):
        raise UsageError(f"{shown(path)}: sample rate {info.sample_rate:g} Hz is not positive")
    if info.channels < 1 or (info.frames <= 0 and info.format != "FLAC"):
        raise UsageError(f"{shown(path)}: holds no samples")
    return info


def _read(fh, count: int, channels: int, known: bool) -> np.ndarray:
    """Up to ``count`` samples; for a file of unknown length straight from libsndfile
    (soundfile's ``read`` seeks after reading, which such a file refuses)."""
    if known:
        return fh.read(count, dtype="float32", always_2d=True)
    import soundfile as sf

    out = np.empty((count, channels), dtype=np.float32)
    got = sf._snd.sf_readf_float(fh._file, sf._ffi.cast("float *", out.ctypes.data), count)
    return out[: max(int(got), 0)]


def blocks(info: AudioInfo, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """``(samples, channels)`` float32 blocks of ``info``'s file from ``start`` to ``stop``
    (None: to the end of the decoded data, whatever the header announced); a sample that is
    not finite is a :class:`UsageError` giving its time and channel."""
    import soundfile as sf

    position = 0
    known = info.seekable
    try:
        with sf.SoundFile(os.fsencode(info.path)) as fh:
            if start and known:
                fh.seek(start)
                position = start
            while stop is None or position < stop:
                want = info.block if stop is None else min(info.block, stop - position)
                block = _read(fh, want, info.channels, known)
                if len(block) == 0:
                    break
                if position < start:  # unknown length: no seeking, read up to start
                    cut = min(start - position, len(block))
                    block, position = block[cut:], position + cut
                _check_finite(info, block, position)
                position += len(block)
                if len(block):
                    yield block
    except (sf.LibsndfileError, RuntimeError) as exc:
        reason = " ".join(str(exc).split())
        raise UsageError(f"{shown(info.path)}: cannot decode: {reason}") from None


def _check_finite(info: AudioInfo, block: np.ndarray, position: int) -> None:
    if math.isfinite(float(block.sum(dtype=np.float64))) or np.isfinite(block).all():
        return
    row, channel = np.argwhere(~np.isfinite(block))[0]
    at = position + int(row)
    raise UsageError(
        f"{shown(info.path)}: sample {at} ({at / info.sample_rate:.3f} s, channel "
        f"{int(channel) + 1}) is {block[row, channel]}; samples must be finite"
    )


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
    samples = len(s1) * hop + len(tail)
    if samples == 0:
        raise UsageError(f"{shown(info.path)}: holds no samples")
    count = samples * info.channels
    return Scan(np.maximum(frame_power, 0.0), total / samples, total_sq / count, peak, samples)


def frames(info: AudioInfo, n: int, hop: int, batch: int = 16) -> Iterator[np.ndarray]:
    """Pass two: ``(F, channels, n)`` float64 batches of consecutive frames (``F <= batch``,
    fewer for many channels: :data:`BATCH_VALUES`), frame ``i`` starting at sample ``i·hop``;
    a tail shorter than a frame is not returned. 16 frames a batch: a stereo batch of 16384-
    sample frames is 4 MiB, and each FFT's cost per frame is the same as at 32."""
    batch = max(1, min(batch, BATCH_VALUES // (info.channels * n)))
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


def read_excerpt(info: AudioInfo, start: int, length: int, mix: bool = False) -> np.ndarray:
    """``(channels, length)`` float32 samples from ``start`` (clipped to the file); with
    ``mix``, ``(1, length)``: the channels' mean, block by block."""
    start = max(0, min(start, info.frames - 1))
    stop = min(info.frames, start + length)
    parts = [
        block.mean(1, keepdims=True, dtype=np.float64).astype(np.float32) if mix else block
        for block in blocks(info, start, stop)
    ]
    width = 1 if mix else info.channels
    data = np.concatenate(parts) if parts else np.zeros((0, width), np.float32)
    return np.ascontiguousarray(data.T)
