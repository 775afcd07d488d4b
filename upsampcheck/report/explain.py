"""Causes and fixes in words, one pair per artifact and upsampler kind (docs/method.md)."""

from __future__ import annotations

from typing import Any


def fmt_sums(sums: list[float]) -> str:
    """Polyphase sums as a short list: ``[2, 1, 1, 1]``."""
    return "[" + ", ".join(f"{v:.3g}" for v in sums) + "]"


EQUAL_SUMS = 1e-3
"""Polyphase sums within this fraction of the largest are equal: the kernel replicates no DC."""


def equal_sums(sums: list[float] | None) -> bool:
    """True when every polyphase sum is within :data:`EQUAL_SUMS` of the others (relative to
    the largest magnitude)."""
    if not sums:
        return False
    scale = max(abs(v) for v in sums)
    return scale > 0 and max(sums) - min(sums) <= EQUAL_SUMS * scale


def passed_on_cause() -> tuple[str, str]:
    """The cause of lines on the grid of a stage whose polyphase DC gains are equal: they are
    not its own replicas of DC, they reach it from before. (The sums are in the stage's
    details; left out here, the same words group every such stage in the text.)"""
    cause = (
        "its polyphase components have equal DC gains, so it replicates no DC: these lines are "
        "at its input (made before it, by a nonlinearity or an earlier upsampler) or images of "
        "them that its filter does not reject"
    )
    fix = "look at the stages before it (their lines), or strengthen its anti-image filter"
    return cause, fix


def tonal_cause(kind: str, details: dict[str, Any], probes: set[str]) -> tuple[str, str]:
    """Why a stage of ``kind`` makes lines on its ``m·fs_in`` grid, and what to change.

    ``probes`` are the probes the lines showed in: DC points at the upsampler's own polyphase
    gains, silence at an offset (bias, ReLU) being replicated.
    """
    length, stride = details.get("length"), details.get("stride")
    sums = details.get("polyphase_sums")
    offset = "silence" in probes and "dc" not in probes
    if offset:
        cause = (
            "a DC offset (a bias or ReLU before or inside this stage) is replicated to every "
            "multiple of its input rate"
        )
        fix = "remove the biases before this upsampler, or tie them across output phases"
        if kind == "subpixel":
            cause = "each output phase has its own bias, so silence comes out periodic"
            fix = "tie the per-phase biases (ICNR with --bias) or drop the bias"
        return cause, fix
    if (
        kind in ("transposed", "ConvTranspose1d")
        and equal_sums(sums)
        and not details.get("zero_stuffing")
    ):
        return passed_on_cause()
    if kind in ("transposed", "ConvTranspose1d") and details.get("weights") == "fixed":
        return fixed_filter_cause(details)
    if kind in ("transposed", "ConvTranspose1d"):
        where = f" (polyphase sums P_r = {fmt_sums(sums)})" if sums else ""
        if length and stride and length % stride:
            cause = (
                f"partial overlap: kernel length {length} is not a multiple of stride {stride}, "
                f"so output phases sum different numbers of taps{where}"
            )
        else:
            whose = {"learned": "learned weights", "initialization": "weight initialization"}
            origin = whose.get(details.get("weights", ""), "")
            if not origin and details.get("init"):
                origin = "weight initialization"
            where = f" (sums P_r = {fmt_sums(sums)})" if sums else ""
            cause = (
                f"{origin or 'the weights'}: the kernel's polyphase components have different "
                f"DC gains{where}, so a constant input comes out periodic"
            )
        fix = (
            "use a kernel length that is a multiple of the stride and tie the polyphase "
            "components (equal sums), or use nearest-neighbour interpolation + convolution"
        )
    elif kind == "subpixel":
        cause = (
            "each output phase has its own sub-kernel with its own DC gain, so a constant "
            "input comes out periodic"
        )
        fix = "initialise with ICNR (identical sub-kernels per phase), or use nearest + conv"
    elif kind == "stretch":
        cause = (
            "zero insertion turns a constant into an impulse train: every multiple of the "
            "input rate carries a copy of DC"
        )
        fix = "low-pass after zero insertion (a band-limited resampler), or interpolate instead"
    else:
        cause = (
            "the stage's output phases have unequal DC gains (polyphase mismatch), so a "
            "constant input comes out periodic"
        )
        fix = (
            "make every output phase's filter sum to the same gain (tied weights, ICNR), or "
            "use interpolation + convolution"
        )
    return cause, fix


def fixed_filter_cause(details: dict[str, Any]) -> tuple[str, str]:
    """The tonal cause and fix of a transposed conv whose kernel is a fixed filter (a buffer or
    a constant, never initialised nor trained): zero stuffing for a one-tap kernel, else a
    fixed filter bank with unequal polyphase DC gains."""
    stride, sums = details.get("stride"), details.get("polyphase_sums")
    if details.get("zero_stuffing"):
        cause = (
            f"a fixed filter (not trained): zero stuffing by {stride} (a one-hot kernel): "
            "every multiple of the input rate carries a copy of the input's DC"
        )
        fix = (
            "follow it with a low-pass that removes the images (a PQMF synthesis filter does, "
            "if its stopband covers them), or remove the DC before it"
        )
        return cause, fix
    where = f" (sums P_r = {fmt_sums(sums)})" if sums else ""
    cause = (
        "a fixed filter bank (not trained): its polyphase components have different DC "
        f"gains{where}, so a constant input comes out periodic"
    )
    fix = (
        "design the filter so every polyphase component sums to the same gain, or follow it "
        "with a low-pass that removes the images, or remove the DC before it"
    )
    return cause, fix


def filtering_cause(kind: str, details: dict[str, Any]) -> tuple[str, str]:
    """Why the passband droops, and what to change."""
    if kind == "nearest":
        cause = (
            "nearest-neighbour interpolation is a box filter: its sinc response droops toward "
            "the input Nyquist"
        )
    elif kind == "linear":
        cause = (
            "PyTorch's linear interpolation (align_corners=False) is a half-pixel triangle "
            "kernel: its response droops steeply toward the input Nyquist"
        )
    else:
        cause = "the stage's kernel attenuates the top of the input band"
    fix = (
        "let the following convolution compensate (train it), prefer nearest over linear, or "
        "use a band-limited resampler with a flat passband"
    )
    return cause, fix


def replicas_cause(kind: str) -> tuple[str, str]:
    """Why images of the input band survive, and what to change."""
    if kind == "stretch":
        cause = (
            "zero insertion copies the input band to every multiple of the input rate, unattenuated"
        )
    else:
        cause = (
            "the stage's filter barely attenuates the images that upsampling creates at fs_in ± f"
        )
    return cause, "follow the upsampler with a low-pass, or use a band-limited resampler"


def offset_cause(details: dict[str, Any]) -> tuple[str, str]:
    """Why silence comes out with a DC offset, and what to change."""
    cause = "a bias (or a ReLU) leaves a DC offset at the output under silence"
    fix = "drop the bias in upsampling layers, or follow them with a DC-blocking high-pass"
    return cause, fix


def unmeasured_cause(layout: Any) -> tuple[str, str]:
    """Why an output line on the grid of a stage that could not be measured alone (an
    ``istft``: its input is complex) is placed at or after it; ``layout`` has ``stage``
    (``kind``, ``factor``, ``name``) and ``fs_in``."""
    stage = layout.stage
    cause = (
        f"the line lies on the grid of {stage.name} ({stage.kind} x{stage.factor:g}: "
        f"multiples of its {layout.fs_in:g} Hz input rate) and no measured stage carries it "
        "before: what is the same in every frame at its input (a bias in the magnitude or "
        "phase, an offset) comes out once per hop, or a nonlinearity after it made the line "
        "on that grid"
    )
    if stage.kind == "istft":
        fix = (
            "remove constant offsets from the predicted magnitude/phase (biases, exp of a "
            "bias), or check the frame-rate layers before it with upsampcheck layer"
        )
    else:
        fix = "check this stage on its own (upsampcheck layer)"
    return cause, fix
