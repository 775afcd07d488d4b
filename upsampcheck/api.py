"""The Python API: what the CLI does, as functions returning a :class:`~.report.findings.Report`.

from upsampcheck import LayerSpec, check_layer, check_model

report = check_layer(LayerSpec("transposed", stride=4, length=5), sample_rate=16000)
report.verdict, report.exit_code, report.findings, report.to_json()

report = check_model(my_vocoder, sample_rate=22050, input_shape=(80, 200))
assert report.verdict == "pass", [f.message for f in report.findings]

report = check_audio(["generated.wav"])      # an AudioReport: files[i].grid, .lines, clips()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from .audio.check import check_audio as _check_audio
from .check import check_layer, check_stack
from .config import AudioThresholds, Thresholds, load_audio_thresholds, load_thresholds
from .model.check import ModelOptions
from .model.check import check_model as _check_loaded
from .report.findings import Report
from .subjects.layers import LayerSpec
from .subjects.loading import LoadedModel, load_model
from .subjects.stack import StackSpec, load_stack

__all__ = [
    "LayerSpec",
    "Report",
    "StackSpec",
    "Thresholds",
    "check_audio",
    "check_layer",
    "check_model",
    "check_stack",
    "load_stack",
    "load_thresholds",
]


def check_model(
    model: nn.Module | str | Path | None = None,
    *,
    arch: str | None = None,
    arch_kwargs: dict[str, Any] | None = None,
    trust_checkpoint: bool = False,
    weights: str | None = None,
    sample_rate: float = 16000.0,
    input_shape: tuple[int, ...] | None = None,
    method: str = "forward",
    silence_value: float = 0.0,
    stage: str | None = None,
    seed: int = 0,
    device: str = "auto",
    thresholds: Thresholds | None = None,
) -> Report:
    """Check a model: an ``nn.Module`` you built, or a checkpoint path (with ``arch`` for state
    dicts; ``weights`` picks EMA or other weights by key or prefix), or ``arch`` alone for a
    fresh init. ``sample_rate`` is the output audio's rate;
    ``input_shape`` one example's input (no batch, time last), inferred when None. A module
    handed in is measured in eval mode and keeps its own train/eval mode afterwards."""
    if isinstance(model, nn.Module):
        training = model.training
        loaded = LoadedModel(module=model.eval(), source="module")
        name = type(model).__name__
    else:
        path = Path(model) if model is not None else None
        loaded = load_model(path, arch, arch_kwargs, trust_checkpoint, seed, weights)
        name = path.name if path else arch
    opts = ModelOptions(
        sample_rate=sample_rate,
        input_shape=input_shape,
        method=method,
        silence_value=silence_value,
        stage=stage,
        seed=seed,
        device=device,
    )
    subject = {"kind": "model", "name": name, "format": loaded.source, "method": method}
    try:
        return _check_loaded(loaded, opts, thresholds or load_thresholds(), subject)
    finally:
        if isinstance(model, nn.Module):
            model.train(training)  # a module handed in keeps its train/eval mode


def check_audio(files: list[str | Path] | str | Path, thresholds: AudioThresholds | None = None):
    """Check generated audio files (one report for all): stationary lines, the upsampling
    grid ``fs / K`` they lie on, their level in the quiet passages. ``thresholds`` default to
    the ``[audio]`` table of ``configs/default.toml`` (and pyproject.toml's)."""
    paths = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]
    return _check_audio(paths, thresholds or load_audio_thresholds())
