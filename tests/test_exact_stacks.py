"""Issue 20: deep stacks (16·16, 10·10·2·2) and 2-channel MelGAN-shaped stacks, as stacks and
as models, at short and default lengths: every stage's reference in 1–5 % of its band, and its
filtering and replicas numbers its own (the stage driven alone) at 0.01 dB of the float64
closed forms (tests/oracles.py); the first stage's DC lines exact in the chain."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracles import biased_layers, driven_dc_lines, dtft_power

from upsampcheck.check import check_stack
from upsampcheck.model.check import ModelOptions, check_model
from upsampcheck.subjects.loading import LoadedModel
from upsampcheck.subjects.stack import build_stack, parse_stack

EXACT_DB = 0.01
POINTS = (0.25, 0.5, 0.75, 0.9)
STACKS = {"16.16": ((16, 16), 1), "10.10.2.2": ((10, 10, 2, 2), 1), "melgan2": ((8, 8, 2, 2), 2)}


def stack_spec(strides: tuple[int, ...], channels: int):
    layers = biased_layers(strides)
    return parse_stack(
        {"name": "deep", "sample_rate": 16000.0, "channels": channels, "seed": 7,
         "layer": layers},
        "deep.toml",
    )  # fmt: skip


def run(name: str, how: str, short: bool):
    strides, channels = STACKS[name]
    spec = stack_spec(strides, channels)
    modules = build_stack(spec)
    ups = [m for m in modules if isinstance(m, torch.nn.ConvTranspose1d)]
    if how == "stack":
        report = check_stack(spec, probe_samples=600 if short else None)
    else:
        model = torch.nn.Sequential(*modules).eval()
        shape = (channels, 50 if short else 2048)
        report = check_model(LoadedModel(model, "module"), ModelOptions(16000.0, shape))
    return report, ups, channels


def gain(weight: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``mean_c Σ_o |H_oc(f)|²`` (up to the constant ``1 / C``)."""
    c_in, c_out, _ = weight.shape
    return sum(dtft_power(weight[c, o], f) for c in range(c_in) for o in range(c_out))


CASES = [
    *((name, "stack", short) for name in STACKS for short in (False, True)),
    *((name, "model", True) for name in STACKS),
    ("16.16", "model", False),  # (the other models at the default length: slow, same code)
]


@pytest.mark.parametrize(
    ("name", "how", "short"),
    CASES,
    ids=[f"{n}-{h}-{'short' if s else 'default'}" for n, h, s in CASES],
)
def test_every_stage_of_a_deep_or_two_channel_stack_has_its_own_exact_numbers(name, how, short):
    report, ups, channels = run(name, how, short)
    assert len(report.stages) == len(ups)  # no stage missing
    for stage, module in zip(report.stages, ups, strict=True):
        m, s = stage.measurement, int(stage.factor)
        weight = module.weight.detach().double().numpy()
        alone = stage.details["standalone"]
        assert m.reference_bins >= channels and stage.details["chain"]["reference_bins"] >= 1
        fractions = alone.response_curve[0]
        band = fractions[(fractions >= 0.01) & (fractions <= 0.05)]
        reference = gain(weight, band / (2 * s)).mean()
        for point in POINTS:
            want = 10 * np.log10(gain(weight, np.array([point / (2 * s)]))[0] / reference)
            assert m.response_db[str(point)] == pytest.approx(want, abs=EXACT_DB), (stage, point)
        # image rejection on the bin nearest fs_in/8, which carries one input channel, c
        q = round(m.image_tone_hz / alone.bin_hz)
        c, n = ((q - 1) // 2) % channels, alone.period_in * s
        tone = sum(dtft_power(weight[c, o], np.array([q / n]))[0] for o in range(channels))
        image = sum(
            dtft_power(weight[c, o], np.array([(alone.period_in - q) / n]))[0]
            for o in range(channels)
        )
        assert m.image_rejection_db == pytest.approx(10 * np.log10(image / tone), abs=EXACT_DB)
    first, weight = report.stages[0].measurement, ups[0].weight.detach().double().numpy()
    period = first.period_in
    want = driven_dc_lines(weight, int(report.stages[0].factor), first.fs_in * first.factor,
                           period, channels)  # fmt: skip
    got = {round(ln.freq_hz, 6): ln.level_db for ln in first.lines if ln.probe == "dc"}
    for freq, level in want.items():
        if level > -100:
            assert got[round(freq, 6)] == pytest.approx(level, abs=EXACT_DB), freq
