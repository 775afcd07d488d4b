"""The Python API: what the CLI does, as functions returning a :class:`~.report.findings.Report`.

from upsampcheck import LayerSpec, check_layer, check_model

report = check_layer(LayerSpec("transposed", stride=4, length=5), sample_rate=16000)
report.verdict, report.exit_code, report.findings, report.to_json()

report = check_model(my_vocoder, sample_rate=22050, input_shape=(80, 200))
assert report.verdict == "pass", [f.message for f in report.findings]

report = check_audio(["generated.wav"])      # an AudioReport: files[i].grid, .lines, clips()

write_report(report, "upsampcheck-report")   # report.json, verdict.txt, figures, report.html

fixed = repair_model(my_vocoder, sample_rate=22050, input_shape=(80, 200))
fixed.module, fixed.stages, fixed.snr_db, fixed.after.verdict   # tied phase sums, figures

Bad input raises :class:`UsageError` (the command line's exit 2) with a one-line message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import nn

from .audio.check import check_audio as _check_audio
from .check import check_layer, check_stack
from .config import AudioThresholds, Thresholds, load_audio_thresholds, load_thresholds
from .errors import UsageError
from .model.check import ModelOptions
from .model.check import check_model as _check_loaded
from .report.findings import Finding, Report, StageResult
from .subjects.layers import LayerSpec
from .subjects.loading import LoadedModel, load_model
from .subjects.stack import StackSpec, load_stack

__all__ = [
    "AudioThresholds",
    "Finding",
    "LayerSpec",
    "Report",
    "StackSpec",
    "StageResult",
    "Thresholds",
    "UsageError",
    "check_audio",
    "check_layer",
    "check_model",
    "check_stack",
    "load_stack",
    "load_thresholds",
    "repair_model",
    "write_report",
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
    short_probe: bool = False,
) -> Report:
    """Check a model's upsampling stages, as ``upsampcheck model`` does.

    Args:
        model: an ``nn.Module`` you built (measured in eval mode; it keeps its own train/eval
            mode afterwards), a checkpoint path (``.pt``/``.pth``/``.ckpt``/``.safetensors``;
            a state dict needs ``arch``), or None with ``arch`` for a fresh initialisation.
        arch: ``"module:Class"`` or ``"path/to/file.py:Class"`` that builds the model.
        arch_kwargs: keyword arguments for ``arch``'s constructor.
        trust_checkpoint: allow checkpoints that can run code (full pickles, TorchScript,
            ``torch.export`` archives). Off by default: state dicts load weights-only.
        weights: which weights of a checkpoint that holds several (a sub-dict key such as
            ``"ema"``, or a key prefix such as ``"model_ema"``); None: the raw weights.
        sample_rate: the output audio's rate in Hz.
        input_shape: one example's input, no batch, time last (``(80, 200)`` for a mel
            vocoder); None: inferred from the first weights.
        method: the module's method to drive (``"forward"``, ``"decode"``, ...).
        silence_value: the input value that means silence (e.g. ``-11.5`` for a log-mel).
        stage: measure only the stage with this name (its full name from the report).
        seed: seeds the probes and any fresh initialisation (0 .. 2**64 - 1).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        thresholds: severities; None: the shipped defaults merged with pyproject.toml.
        short_probe: keep ``input_shape``'s length where it is shorter than the
            full-resolution probe (``--short-probe``): the same lines, coarser responses.

    Returns:
        A :class:`Report`: ``stages``, ``findings``, ``verdict`` (``"pass"``/``"fail"``),
        ``exit_code`` and ``to_json()``.
    """
    if short_probe and input_shape is None:
        raise UsageError("short_probe keeps the length of input_shape: give one")
    opts = ModelOptions(
        sample_rate=sample_rate,
        input_shape=input_shape,
        method=method,
        silence_value=silence_value,
        stage=stage,
        seed=seed,
        device=device,
        short_probe=short_probe,
    )
    with _subject(model, arch, arch_kwargs, trust_checkpoint, seed, weights, method) as (
        loaded,
        subject,
    ):
        return _check_loaded(loaded, opts, thresholds or load_thresholds(), subject)


@contextmanager
def _subject(
    model: nn.Module | str | Path | None, arch: str | None, arch_kwargs: dict | None,
    trust_checkpoint: bool, seed: int, weights: str | None, method: str,
) -> Iterator[tuple[LoadedModel, dict]]:  # fmt: skip
    """The model to check, loaded (a module handed in is put in eval mode, and back in its
    own mode afterwards), and the report's subject."""
    if isinstance(model, nn.Module):
        training = model.training
        model.eval()  # for its effect: a project's eval() may return None
        loaded = LoadedModel(module=model, source="module")
        name = type(model).__name__
    else:
        path = Path(model) if model is not None else None
        loaded = load_model(path, arch, arch_kwargs, trust_checkpoint, seed, weights)
        name = path.name if path else arch
    subject = {"kind": "model", "name": name, "format": loaded.source, "method": method}
    try:
        yield loaded, subject
    finally:
        if isinstance(model, nn.Module):
            model.train(training)  # a module handed in keeps its train/eval mode


def repair_model(
    model: nn.Module | str | Path,
    *,
    stages: list[str] | None = None,
    arch: str | None = None,
    arch_kwargs: dict[str, Any] | None = None,
    trust_checkpoint: bool = False,
    weights: str | None = None,
    sample_rate: float = 16000.0,
    input_shape: tuple[int, ...] | None = None,
    method: str = "forward",
    silence_value: float = 0.0,
    seed: int = 0,
    device: str = "auto",
    thresholds: Thresholds | None = None,
):
    """Tie the phase sums of a model's transposed/subpixel stages, as ``upsampcheck repair``
    does (docs/method.md, "Repair"), and measure what changed.

    ``stages``: the stage names to repair (a stage the remedy cannot fix raises
    :class:`UsageError` with the reason); None: every failing stage (the others that fail are
    listed in ``refused``). The other arguments are :func:`check_model`'s.

    Returns:
        A :class:`~upsampcheck.repair.run.RepairResult`: ``module`` (a corrected copy; the
        model handed in is left as it is), ``before`` and ``after`` (the two reports),
        ``stages`` (per repaired stage: the lines before and after, the kernel's relative
        change, the response change max/RMS in dB), ``output``, ``beyond_reach``,
        ``refused``, ``snr_db`` (output after vs before on the multitone), ``verdict``,
        ``to_json()``.
    """
    from .repair.run import repair_loaded

    opts = ModelOptions(
        sample_rate=sample_rate,
        input_shape=input_shape,
        method=method,
        silence_value=silence_value,
        seed=seed,
        device=device,
    )
    with _subject(model, arch, arch_kwargs, trust_checkpoint, seed, weights, method) as (
        loaded,
        subject,
    ):
        return repair_loaded(loaded, opts, thresholds, stages, subject)


def write_report(report: Any, out: str | Path, *, plots: bool = True) -> Path:
    """Write ``report`` (from any ``check_*``) as a report folder at ``out``: ``report.json``,
    ``verdict.txt``, figures and ``report.html`` (``plots=False``: the first two only), whole
    or not at all, under the same rules as ``--out`` (an existing folder is replaced only when
    it is a report folder the tool wrote). Returns the folder."""
    from .outputs.folder import write_report_folder

    return write_report_folder(report, report.to_json(), Path(out), figures=plots)


def check_audio(files: list[str | Path] | str | Path, thresholds: AudioThresholds | None = None):
    """Check generated audio files (one report for all): stationary lines, the upsampling
    grid ``fs / K`` they lie on, their level in the quiet passages. ``thresholds`` default to
    the ``[audio]`` table of ``configs/default.toml`` (and pyproject.toml's)."""
    paths = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]
    return _check_audio(paths, thresholds or load_audio_thresholds())
