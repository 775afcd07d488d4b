"""``upsampcheck repair``: tie the phase sums of a checkpoint's failing transposed/subpixel
stages, write the repaired checkpoint in its own layout, and prove the lines are gone."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from .app import Command, app
from .options import (
    Arch,
    ArchKwargs,
    Device,
    InputShape,
    Method,
    ModelSeed,
    Out,
    Plots,
    Quiet,
    SampleRate,
    SilenceValue,
    TrustCheckpoint,
    Weights,
    parse_json_object,
)

REPAIR_EXAMPLES = """[bold]Examples[/bold]

  Repair every failing transposed/subpixel stage of a vocoder, and prove it:
    [cyan]upsampcheck repair g.pt --arch hifigan:Generator --input-shape 80,200 --sample-rate 22050 --write g_tied.pt[/cyan]

  The figures alone (nothing written but the report), for two named stages:
    [cyan]upsampcheck repair g.pt --arch hifigan:Generator --stage ups.0 --stage ups.1 --dry-run[/cyan]

  Then check the repaired checkpoint as any other:
    [cyan]upsampcheck model g_tied.pt --arch hifigan:Generator --input-shape 80,200 --sample-rate 22050[/cyan]
"""


@app.command(cls=Command, epilog=REPAIR_EXAMPLES)
def repair(
    checkpoint: Annotated[
        Path,
        typer.Argument(
            help="The checkpoint to repair: a state dict (plain, Lightning, nested) or "
            ".safetensors, with --arch.",
            show_default=False,
            metavar="CHECKPOINT",
        ),
    ],
    arch: Arch = None,
    arch_kwargs: ArchKwargs = None,
    weights: Weights = None,
    trust_checkpoint: TrustCheckpoint = False,
    stage: Annotated[
        Optional[list[str]],
        typer.Option(
            help="Repair this stage (its full name in the report; repeat for several) "
            "\\[default: every failing stage].",
            metavar="NAME",
        ),
    ] = None,
    write: Annotated[
        Optional[Path],
        typer.Option(
            "--write",
            help="The repaired checkpoint: a new file (never the input, never over a file).",
            metavar="FIXED.pt",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Measure and report, write no checkpoint.", metavar=""),
    ] = False,
    input_shape: InputShape = None,
    method: Method = "forward",
    sample_rate: SampleRate = None,
    silence_value: SilenceValue = 0.0,
    seed: ModelSeed = None,
    device: Device = "auto",
    out: Out = Path("upsampcheck-repair"),
    plots: Plots = True,
    quiet: Quiet = False,
) -> int:
    """Repair a checkpoint's upsampling stages by tying their phase sums; report before/after."""
    params = dict(locals())
    if (write is None) == (not dry_run):
        raise UsageError("give --write FIXED.pt for the repaired checkpoint, or --dry-run")
    from ..outputs.safe_folder import OutFolder
    from ..paths import check_input_file, shown
    from ..repair.checkpoint import WRITABLE, check_target
    from .model import model_options

    check_input_file(checkpoint, "checkpoint")
    if write is not None:
        check_target(write, checkpoint)
    opts = model_options({**params, "stage": None, "timeout": None})
    kwargs = parse_json_object(arch_kwargs) if arch_kwargs is not None else None
    folder = OutFolder(out).check()
    folder.lock()
    wrote = False
    try:
        from ..repair.checkpoint import repaired_checkpoint, write_checkpoint
        from ..repair.report import fill_repair_folder, summary_lines
        from ..repair.run import repair_loaded
        from ..subjects.loading import load_model

        loaded = load_model(
            checkpoint, arch, kwargs, trust_checkpoint, opts.seed, weights, keep_checkpoint=True
        )
        if write is not None and (loaded.source not in WRITABLE or loaded.tensors is None):
            raise UsageError(
                f"{shown(checkpoint)} is a {loaded.source} checkpoint: repair writes state "
                "dicts (plain, Lightning, nested, safetensors); save the module's state_dict()"
            )
        subject = {"kind": "model", "name": shown(checkpoint.name), "arch": arch,
                   "checkpoint": shown(checkpoint), "format": loaded.source}  # fmt: skip
        result = repair_loaded(loaded, opts, None, stage or None, subject)
        data = result.to_json()
        if write is not None:
            obj, notes = repaired_checkpoint(loaded, result.module)
            data["notes"] += notes
            data["written"] = shown(write)
        with folder.staged() as staging:
            fill_repair_folder(result, data, staging, plots)
            if write is not None:
                write_checkpoint(obj, write, loaded.source)
        wrote = True
    finally:
        folder.release(wrote)
    lines = [] if quiet else summary_lines(data)
    where = f"; repaired checkpoint {shown(write)}" if write is not None else " (dry run)"
    verdict = f"verdict after the repair: {result.verdict.upper()} (exit {result.exit_code})"
    lines.append(f"{verdict}; report in {shown(out)}{where}")
    sys.stdout.write("\n".join(lines) + "\n")
    return result.exit_code
