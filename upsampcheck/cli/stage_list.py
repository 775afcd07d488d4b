"""``upsampcheck model --list-stages``: the discovered stages as a table (or JSON), nothing
measured and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UsageError


def _hz(value: float | None) -> str:
    return "-" if value is None else f"{value:,.3f}".rstrip("0").rstrip(".")


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def print_stage_list(
    path: Path | None,
    arch: str | None,
    kwargs: dict | None,
    trust_checkpoint: bool,
    weights: str | None,
    opts: object,
    as_json: bool,
    timeout: float | None,
) -> int:
    """Load the model as ``model`` does, discover its stages (:func:`~.model.listing.
    list_stages`) and print them: name, op, factor, input and output rate, and the shapes
    (batch left out) seen at discovery. Exit 0."""
    from ..model.listing import list_stages
    from ..paths import shown
    from ..subjects.loading import load_model
    from ..subjects.watchdog import time_limit

    name = shown(path.name) if path else str(arch)
    with time_limit(timeout, name) as watch:
        loaded = load_model(path, arch, kwargs, trust_checkpoint, opts.seed, weights)
        watch.running(loaded.module)
        listing = list_stages(loaded, opts)
    rows = listing.rows + listing.other_axis
    if as_json:
        print(
            json.dumps(
                {
                    "subject": name,
                    "sample_rate_hz": opts.sample_rate,
                    "input_shape": list(listing.input_shape),
                    "model_factor": listing.factor,
                    "stages": [
                        {
                            "name": r.name,
                            "op": r.kind,
                            "factor": r.factor,
                            "fs_in_hz": r.fs_in,
                            "fs_out_hz": r.fs_out,
                            "in_shape": list(r.in_shape[1:]),
                            "out_shape": list(r.out_shape[1:]),
                            "measurable": r.measurable,
                            "why_not": r.why,
                        }  # fmt: skip
                        for r in rows
                    ],
                    "notes": listing.notes,
                },
                indent=2,
            )
        )
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{name}: {len(listing.rows)} upsampling stage(s), output at "
        f"{opts.sample_rate:g} Hz, discovered at input {_shape(listing.input_shape)} (no batch)",
        title_justify="left",
    )
    for column, justify in [
        ("stage", "left"), ("op", "left"), ("factor", "right"), ("in Hz", "right"),
        ("out Hz", "right"), ("in shape", "left"), ("out shape", "left"),
    ]:  # fmt: skip
        table.add_column(column, justify=justify, no_wrap=column in ("op", "factor"))
    for r in rows:
        table.add_row(
            r.name, r.kind if r.why is None else f"{r.kind} ({r.why})", f"{r.factor:g}",
            _hz(r.fs_in), _hz(r.fs_out), _shape(r.in_shape[1:]), _shape(r.out_shape[1:]),
        )  # fmt: skip
    console = Console(highlight=False)
    console.print(table)
    for note in listing.notes:
        console.print(f"note: {note}", markup=False)
    if not rows:
        console.print("no upsampling stage found: nothing lengthens the time axis")
    return 0


def refuse_with_list_stages(paths: list[Path], write_baseline: object, input_file: object) -> None:
    """``--list-stages`` lists one model and writes nothing: refuse what would be lost."""
    if len(paths) > 1:
        raise UsageError("--list-stages takes one checkpoint; give one at a time")
    if write_baseline is not None or input_file is not None:
        raise UsageError("--list-stages measures nothing: drop --write-baseline and --input")
