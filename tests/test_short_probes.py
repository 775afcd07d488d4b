"""``--short-probe``: a probe as short as the user asks for. Below the length whose period puts
driven bins in 1-5 % of every stage's band, the period the length holds is kept (a response
without a bin in that band is read against its lowest driven bin), down to the 32 samples per
period the deepest stage needs; without the flag, a short length is extended to the full
resolution, as an inferred shape gets."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from torch import nn

from upsampcheck.model import periods
from upsampcheck.model.check import ModelOptions, check_model
from upsampcheck.subjects.loading import LoadedModel

VOCODER = [Fraction(1), Fraction(8), Fraction(64)]  # stages at fs0, 8 fs0 and 64 fs0


def test_the_full_resolution_needs_a_128_sample_period_and_a_short_request_keeps_32():
    # 128: the first period whose odd bins (3, 5, ...) of 64 reach into 1-5 % of fs0/2
    assert periods.min_model_period(VOCODER, 16) == 128
    assert periods.min_model_period(VOCODER, 16, references=False) == 32  # MIN_STAGE_PERIOD


@pytest.mark.parametrize(
    ("asked", "period", "length"),
    [(102, 32, 128), (128, 32, 128), (300, 64, 300), (512, 128, 512), (2048, 512, 2048)],
)
def test_a_requested_length_keeps_the_longest_period_it_holds(asked, period, length):
    notes: list[str] = []
    assert periods.choose_period(VOCODER, 16, asked, 256.0, notes, 1, coarse=True) == (
        period,
        length,
    )
    coarse = [n for n in notes if "short of the 128 that puts driven bins" in n]
    assert bool(coarse) == (period < 128)  # said whenever the response is read coarsely
    assert bool([n for n in notes if "extended to 128" in n]) == (asked < 128)


def test_without_coarse_a_short_request_is_extended_to_the_full_resolution():
    notes: list[str] = []
    assert periods.choose_period(VOCODER, 16, 102, 256.0, notes, 1) == (128, 512)
    assert notes == [
        "input length 102 is too short for 2 periods of the 128-sample multitone the deepest "
        "stage needs (plus transients); extended to 512"
    ]


def test_a_period_has_a_bin_for_every_input_group():
    # 8 channels, 8 groups: 32 samples excite 6 odd bins (3 .. 13), 64 excite 14
    assert periods.min_model_period([Fraction(1)], 16, 8, references=False) == 64


class Biased(nn.Module):
    """x4 transposed conv with a bias: a DC offset replicated to every multiple of fs_in."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.up = nn.ConvTranspose1d(2, 1, 8, stride=4, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


def lines(report) -> list[tuple[float, float]]:
    stage = report.to_json()["stages"][0]
    return [(line["freq_hz"], line["level_db"]) for line in stage["tonal"]["lines"]]


def test_a_short_probe_finds_the_lines_of_the_full_one():
    model = LoadedModel(Biased().eval(), "module")
    asked = ModelOptions(sample_rate=16000, input_shape=(2, 128), short_probe=True)
    short = check_model(model, asked)
    full = check_model(model, ModelOptions(sample_rate=16000))
    assert (short.subject["input_shape"], full.subject["input_shape"]) == ([2, 128], [2, 16384])
    # without --short-probe, the length is extended to 4 periods of the full 256
    extended = check_model(model, ModelOptions(sample_rate=16000, input_shape=(2, 128)))
    assert extended.subject["input_shape"] == [2, 1024]
    # 2 channels, 2 groups: the full resolution needs a 256-sample period; 128 holds 32
    assert [n for n in short.notes if n.startswith("input length 128 holds a 32-sample")]
    assert [n for n in short.notes if "short of the 256 that puts driven bins" in n]
    # the bias replicated to every multiple of fs_in = 4 kHz up to the 8 kHz Nyquist, on the
    # DC probe, at the levels the full probe measures (re each probe's own signal level)
    assert [f for f, _ in lines(short)] == [f for f, _ in lines(full)] == [4000.0, 8000.0]
    for (_, a), (_, b) in zip(lines(short), lines(full), strict=True):
        assert a == pytest.approx(b, abs=0.1)
    offsets = [r.to_json()["stages"][0]["offset"]["dc_db"] for r in (short, full)]
    assert offsets[0] == pytest.approx(offsets[1], abs=0.1)
    assert short.verdict == full.verdict == "fail"


def test_short_probe_on_the_command_line_keeps_the_given_length(cli):
    args = ["--arch", "test_short_probes:Biased", "--sample-rate", "16000", "--no-plots"]
    result = cli("model", *args, "--input-shape", "2,100", "--short-probe", "--format", "json")
    assert result.code == 1, result.err
    report = result.json()
    assert report["subject"]["input_shape"] == [2, 128]  # 4 periods of 32: 100 extended
    assert [n for n in report["notes"] if n.startswith("input length 100 is too short")]
    refused = cli("model", *args, "--short-probe")
    assert refused.code == 2 and "--short-probe keeps the length of --input-shape" in refused.err


def test_a_period_of_millions_of_samples_is_sized_without_listing_its_bins():
    # loose rates snapped at a short discovery (Demucs 700 M at --input-shape 2,32768) made a
    # period unit of 4093 * 4091 * ...: listing every bin took over 16 GiB before the refusal
    ratios = [Fraction(1, 4093), Fraction(1, 4091), Fraction(2)]
    unit = 4093 * 4091
    assert periods.min_model_period(ratios, 16, 8) == unit * 2  # made even, then no listing
    assert periods.covers_references([Fraction(1)], 2**24, 8)  # the band's bins only
