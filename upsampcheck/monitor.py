"""Watch the upsampling artifacts of a model while it trains, without writing a checkpoint.

A plain loop calls the monitor every step; every ``every`` steps it measures the model in place
(:func:`upsampcheck.check_model` on the live module, in eval mode under ``no_grad``, its
train/eval mode restored after) and logs the output's loudest tonal line, each stage's and the
number of failing findings::

    from torch.utils.tensorboard import SummaryWriter
    from upsampcheck.monitor import UpsamplingMonitor

    monitor = UpsamplingMonitor(every=500, sample_rate=22050, input_shape=(80, 64),
                                writer=SummaryWriter("runs/vocoder"))
    for step, batch in enumerate(loader):
        ...  # the training step
        monitor(generator, step)

With PyTorch Lightning, :class:`UpsamplingCallback` does the same from ``on_train_batch_end``
and logs through ``LightningModule.log_dict`` (so to whatever loggers the trainer has)::

    trainer = Trainer(callbacks=[UpsamplingCallback(every=500, module="generator",
                                                    sample_rate=22050, input_shape=(80, 64))])

A step the monitor measures costs one ``check_model`` call and nothing else; the other steps
cost a modulo. Scalars (``PREFIX`` is ``upsampcheck`` unless given):

- ``PREFIX/output_line_db``: the output's loudest line, dB re signal (absent when no line);
- ``PREFIX/stage/NAME_line_db``: each stage's loudest line;
- ``PREFIX/failing``: failing findings at the current thresholds.

And, where the writer takes them (``add_audio``, ``add_image``; ``media=False`` turns them
off), what TensorBoard users look at: ``PREFIX/output_silence``, the output's response to
silence with its mean removed and normalised to −1 dBFS (the buzz, audible however faint; the
gain is in the clip's tag text), and ``PREFIX/summary``, the report's summary figure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

Log = Callable[[dict[str, float], int], None]


class UpsamplingMonitor:
    """Every ``every`` steps, measure a model in place and log what its upsamplers make.

    Args:
        every: measure when ``step % every == 0``.
        sample_rate: the model output's rate in Hz.
        input_shape: one example's input, no batch, time last (inferred when None).
        writer: a ``torch.utils.tensorboard.SummaryWriter`` (anything with ``add_scalar``).
        log: or any ``log(scalars, step)`` callable (wandb, MLflow, a list).
        prefix: the scalars' tag prefix.
        media: also log the output's silence clip and the summary figure when ``writer``
            has ``add_audio`` / ``add_image`` (a measured step then also draws one figure).
        **options: passed to :func:`upsampcheck.check_model` (``method``, ``silence_value``,
            ``stage``, ``seed``, ``thresholds``).
    """

    def __init__(
        self,
        every: int,
        *,
        sample_rate: float,
        input_shape: tuple[int, ...] | None = None,
        writer: Any = None,
        log: Log | None = None,
        prefix: str = "upsampcheck",
        media: bool = True,
        **options: Any,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer (got {every!r})")
        self.every, self.writer, self.log, self.prefix = every, writer, log, prefix
        self.media = media
        self.options = {"sample_rate": sample_rate, "input_shape": input_shape, **options}
        self.last: dict[str, float] | None = None

    def __call__(self, model: nn.Module, step: int) -> dict[str, float] | None:
        """Measure and log when ``step`` is due; returns the scalars then, else None."""
        if step % self.every:
            return None
        report = self.check(model)
        scalars = report_scalars(report.to_json(), self.prefix)
        if self.writer is not None:
            for tag, value in scalars.items():
                self.writer.add_scalar(tag, value, step)
            if self.media:
                log_media(self.writer, report, self.prefix, step)
        if self.log is not None:
            self.log(scalars, step)
        self.last = scalars
        return scalars

    def check(self, model: nn.Module) -> Any:
        """The report for ``model`` now, on its own device (its train/eval mode restored)."""
        from .api import check_model

        parameter = next(model.parameters(), None)
        device = "cpu" if parameter is None else str(parameter.device)
        return check_model(model, device=device, **self.options)  # keeps the mode

    def measure(self, model: nn.Module) -> dict[str, float]:
        """The scalars for ``model`` now (its train/eval mode is restored afterwards)."""
        return report_scalars(self.check(model).to_json(), self.prefix)


def silence_clip(report: Any) -> Any:
    """The output's response to silence, mean removed and normalised (a
    :class:`~upsampcheck.outputs.clips.Clip`), or None when the report has none or it is
    digital silence."""
    from .outputs.clips import Clip, normalised
    from .report.listening import audible

    samples = (report.output_excerpts or {}).get("silence")
    if samples is None:
        return None
    clip = normalised(Clip("output_silence", "silence", samples, report.sample_rate_hz))
    return clip if audible(clip) else None


def log_media(writer: Any, report: Any, prefix: str, step: int) -> None:
    """``PREFIX/output_silence`` (``add_audio``) and ``PREFIX/summary`` (``add_image``, an
    RGB ``HWC`` array), each when the writer has the method."""
    import numpy as np

    clip = silence_clip(report)
    if clip is not None and hasattr(writer, "add_audio"):
        samples = np.asarray(clip.samples, dtype=np.float32).reshape(1, -1)
        writer.add_audio(
            f"{prefix}/output_silence", samples, step, sample_rate=round(clip.sample_rate)
        )
    if hasattr(writer, "add_image") and report.stages:
        import tempfile
        from pathlib import Path

        import matplotlib.image

        from .outputs.plotting import plot_summary

        with tempfile.TemporaryDirectory(prefix="upsampcheck-monitor-") as tmp:
            png = Path(tmp) / "summary.png"
            plot_summary({**report.figure_data(), "verdict": report.verdict}, png)
            image = matplotlib.image.imread(png)[..., :3]
        writer.add_image(f"{prefix}/summary", image, step, dataformats="HWC")


def report_scalars(report: dict[str, Any], prefix: str = "upsampcheck") -> dict[str, float]:
    """A report's loudest output line, each stage's, and the failing count, as scalars."""
    from .report.trend import trend_row

    row = trend_row(report, "", None, None, "")
    scalars = {f"{prefix}/failing": float(row["failing"])}
    if row["output_line_db"] is not None:
        scalars[f"{prefix}/output_line_db"] = float(row["output_line_db"])
    for name, level in row["worst_line_db"].items():
        if level is not None:
            scalars[f"{prefix}/stage/{name}_line_db"] = float(level)
    return scalars


def _lightning() -> Any:
    try:
        import lightning.pytorch as pl
    except ImportError:
        try:
            import pytorch_lightning as pl
        except ImportError:
            raise ImportError(
                "UpsamplingCallback needs PyTorch Lightning: pip install lightning"
            ) from None
    return pl


def __getattr__(name: str) -> Any:
    """``UpsamplingCallback`` is built on first use, so this module imports without
    Lightning."""
    if name != "UpsamplingCallback":
        raise AttributeError(f"module 'upsampcheck.monitor' has no attribute {name!r}")
    pl = _lightning()

    class UpsamplingCallback(pl.Callback):
        """Lightning callback: every ``every`` global steps, measure ``pl_module`` (or its
        attribute ``module``, e.g. ``"generator"``) and ``log_dict`` the scalars."""

        def __init__(self, every: int, module: str | None = None, **options: Any) -> None:
            super().__init__()
            self.monitor = UpsamplingMonitor(every, **options)
            self.module = module

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            step = trainer.global_step
            if step % self.monitor.every:
                return
            model = getattr(pl_module, self.module) if self.module else pl_module
            scalars = self.monitor.measure(model)
            self.monitor.last = scalars
            pl_module.log_dict(scalars)

    globals()["UpsamplingCallback"] = UpsamplingCallback
    return UpsamplingCallback
