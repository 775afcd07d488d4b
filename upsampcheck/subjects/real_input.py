"""``upsampcheck model ... --input FILE``: the model driven by a real input, its output analysed
as generated audio, and every stationary line traced to the stage whose grid explains it.

The input is one example without batch, time last, as the model takes it: a WAV/FLAC (or any
file libsndfile reads) for a waveform-input model, ``(channels, samples)``; or, for mel or
latent inputs, a ``.npy`` (read without pickles) or a weights-only ``.pt`` holding one tensor.

**Attribution.** A stage whose input runs at ``fs_in`` leaves lines at ``m · fs_in``, and every
later stage runs at a multiple of it, so a line at ``f`` can only come from a stage whose
``fs_in`` divides ``f``. Among those, a stage whose own probe measurement has a line at ``f``
made it; where none has, the stage with the highest such rate (the coarsest grid that explains
the line) is named.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UsageError
from ..paths import check_input_file, shown


def load_input(path: Path) -> tuple[torch.Tensor, float | None]:
    """One example ``(..., T)`` and, for an audio file, its sample rate (None otherwise)."""
    check_input_file(path, "--input")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            value, rate = torch.from_numpy(np.load(path, allow_pickle=False)), None
        elif suffix in (".pt", ".pth"):
            value, rate = torch.load(path, map_location="cpu", weights_only=True), None
        else:
            import soundfile

            data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
            value, rate = torch.from_numpy(np.ascontiguousarray(data.T)), float(rate)
    except UsageError:
        raise
    except Exception as exc:
        what = "a .npy array" if suffix == ".npy" else "a tensor" if suffix != "" else "audio"
        raise UsageError(f"--input {shown(path)}: cannot read it as {what}: {exc}") from None
    if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.dim() < 1:
        raise UsageError(
            f"--input {shown(path)}: holds {type(value).__name__}; give one example as a "
            "floating-point tensor, time last"
        )
    if not torch.isfinite(value).all():
        raise UsageError(f"--input {shown(path)}: holds NaN or Inf")
    return value.float(), rate


@dataclass
class InputResult:
    """The model's output for the real input, analysed as generated audio."""

    path: Path
    file: Any  # audio.results.FileResult
    attribution: dict[float, str | None]


def first_floating(output: Any) -> torch.Tensor:
    """The first floating tensor of a model's result (a tensor, tuple, list or dict)."""
    if isinstance(output, torch.Tensor) and output.is_floating_point():
        return output
    values = output.values() if isinstance(output, dict) else output
    if isinstance(values, (tuple, list)) or isinstance(output, dict):
        for value in values:
            try:
                return first_floating(value)
            except UsageError:
                continue
    raise UsageError("the model's output for --input holds no floating-point tensor")


def run_input(
    model: torch.nn.Module, example: torch.Tensor, method: str, device: torch.device
) -> np.ndarray:
    """The model output for ``example`` as ``(channels, samples)`` float32 numpy."""
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    with torch.no_grad():
        try:
            out = getattr(model, method)(example[None].to(device, dtype))
        except Exception as exc:
            raise UsageError(f"the model failed on --input: {type(exc).__name__}: {exc}") from None
    y = first_floating(out).detach().float().cpu()
    y = y.reshape(-1, y.shape[-1]) if y.dim() > 1 else y[None]
    return y.numpy()


def attribute(freq_hz: float, stages: list, tol_hz: float) -> str | None:
    """The stage that made a line at ``freq_hz`` (see the module docstring), or None."""
    explains = [
        s for s in stages if abs(freq_hz / s.fs_in_hz - round(freq_hz / s.fs_in_hz)) * s.fs_in_hz
        <= tol_hz and round(freq_hz / s.fs_in_hz) >= 1
    ]  # fmt: skip
    made = [
        s for s in explains
        if any(abs(line.freq_hz - freq_hz) <= tol_hz and line.origin in ("", s.name)
               for line in s.measurement.lines)
    ]  # fmt: skip
    chosen = made or explains
    return max(chosen, key=lambda s: s.fs_in_hz).name if chosen else None


def analyse_input(
    path: Path,
    example: torch.Tensor,
    model: torch.nn.Module,
    method: str,
    device: torch.device,
    sample_rate: float,
    stages: list,
    thresholds: Any,
) -> InputResult:
    """Drive ``model`` with ``example`` (read from ``path`` by :func:`load_input`); analyse the
    output at ``sample_rate``."""
    import soundfile

    from ..audio.analyse import analyse_file

    output = run_input(model, example, method, device)
    with tempfile.TemporaryDirectory(prefix="upsampcheck-input-") as folder:
        wav = Path(folder) / f"{path.stem}-output.wav"
        peak = float(np.max(np.abs(output))) or 1.0
        soundfile.write(str(wav), (output / max(peak, 1.0)).T, round(sample_rate), "FLOAT")
        result = analyse_file(wav, thresholds)
    result.label = f"output for {path.name}"
    tol = thresholds.grid_tolerance_bins * sample_rate / result.n_fft
    attribution = {
        line.freq_hz: attribute(line.freq_hz, stages, max(tol, 1e-9))
        for line in result.lines
        if line.locked
    }
    return InputResult(path, result, attribution)
