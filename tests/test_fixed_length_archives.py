"""torch.export archives whose example input fixes a short length (24–50 frames): measured at
the longest probe period that length holds, the resolution said in a note, every grid line
exact. Silence and DC give the same absolute lines whatever the period (the model's response
to them does not depend on the multitone), so the archive's lines must equal, to 0.01 dB, those
of the same model run eagerly at the default length."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from upsampcheck.errors import UsageError
from upsampcheck.model.check import ModelOptions, check_model
from upsampcheck.subjects.loading import LoadedModel, load_model

EXACT_DB = 0.01


class HifiganShaped(nn.Module):
    """mel (80) -> conv_pre -> [leaky ReLU, ConvTranspose1d, residual conv] x (8, 8, 2, 2) ->
    conv_post -> tanh, with small widths (a 256x generator)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        widths = [16, 8, 8, 4, 4]
        self.conv_pre = nn.Conv1d(80, widths[0], 7, padding=3)
        self.ups = nn.ModuleList()
        self.res = nn.ModuleList()
        for i, s in enumerate((8, 8, 2, 2)):
            self.ups.append(nn.ConvTranspose1d(widths[i], widths[i + 1], 2 * s, s, s // 2))
            self.res.append(nn.Conv1d(widths[i + 1], widths[i + 1], 3, padding=1))
        self.conv_post = nn.Conv1d(widths[-1], 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(x)
        for up, res in zip(self.ups, self.res, strict=True):
            x = up(nn.functional.leaky_relu(x, 0.1))
            x = x + res(nn.functional.leaky_relu(x, 0.1))
        return torch.tanh(self.conv_post(nn.functional.leaky_relu(x, 0.1)))


class DiffwaveUpsampler(nn.Module):
    """DiffWave's spectrogram upsampler: two ConvTranspose2d (stride (1, 16)) over (mel, time)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv1 = nn.ConvTranspose2d(1, 1, (3, 32), stride=(1, 16), padding=(1, 8))
        self.conv2 = nn.ConvTranspose2d(1, 1, (3, 32), stride=(1, 16), padding=(1, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.leaky_relu(self.conv1(x.unsqueeze(1)), 0.4)
        return nn.functional.leaky_relu(self.conv2(x), 0.4).squeeze(1)


class EncodecShaped(nn.Module):
    """latent (32) -> conv -> [ELU, ConvTranspose1d(2s, s)] x (8, 5, 4, 2) -> conv (320x)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        widths = [32, 16, 8, 8, 4]
        self.conv_in = nn.Conv1d(32, widths[0], 3, padding=1)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(widths[i], widths[i + 1], 2 * s, s, s // 2 + s % 2, s % 2)
            for i, s in enumerate((8, 5, 4, 2))
        )
        self.conv_out = nn.Conv1d(widths[-1], 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for up in self.ups:
            x = up(nn.functional.elu(x))
        return self.conv_out(nn.functional.elu(x))


CASES = {
    "hifigan": (HifiganShaped, 80, 50),
    "diffwave": (DiffwaveUpsampler, 80, 32),
    "encodec": (EncodecShaped, 32, 24),
}


def exported(model: nn.Module, example: torch.Tensor, root) -> LoadedModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.save(torch.export.export(model.eval(), (example,)), root / "m.pt2")
    return load_model(root / "m.pt2", trust_checkpoint=True)


def absolute_lines(report, probe: str) -> dict[float, float]:
    """The output's lines of ``probe`` in absolute dB (level re signal plus that level)."""
    reference = 10 * math.log10(report.stages[-1].measurement.signal_power)
    return {
        round(ln.freq_hz, 3): ln.level_db + reference
        for ln in report.stages[-1].measurement.lines
        if ln.probe == probe
    }


@pytest.mark.parametrize("case", CASES)
def test_a_short_fixed_length_archive_is_measured_with_exact_grid_lines(case, tmp_path):
    cls, channels, frames = CASES[case]
    model = cls().eval()
    loaded = exported(model, torch.randn(1, channels, frames), tmp_path)
    report = check_model(loaded, ModelOptions(sample_rate=16000.0))
    options = ModelOptions(sample_rate=16000.0, input_shape=(channels, 512))
    eager = check_model(LoadedModel(model, "module"), options)
    assert [s.name for s in report.stages] == [s.name for s in eager.stages]
    assert [(s.factor, s.fs_in_hz) for s in report.stages] == [
        (s.factor, s.fs_in_hz) for s in eager.stages
    ]
    (note,) = [n for n in report.notes if n.startswith("the archive fixes the input length")]
    assert f"at {frames} samples: the probe period is" in note
    assert report.probe_samples == frames
    for stage in report.stages:
        assert stage.measurement.periodicity_error_db < -100, stage.name
    for probe in ("silence", "dc"):
        short, full = absolute_lines(report, probe), absolute_lines(eager, probe)
        loud = {f: v for f, v in full.items() if v > max(full.values(), default=0) - 80}
        assert loud and set(loud) <= set(short), probe
        for freq, level in loud.items():
            assert short[freq] == pytest.approx(level, abs=EXACT_DB), (probe, freq)


def test_an_archive_too_short_for_two_periods_of_8_frames_is_refused_with_the_minimum(tmp_path):
    loaded = exported(HifiganShaped(), torch.randn(1, 80, 20), tmp_path)
    with pytest.raises(UsageError, match="needs at least 24 "):
        check_model(loaded, ModelOptions(sample_rate=16000.0))
