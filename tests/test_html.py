"""report.html: one self-contained page per report folder, its audio players and audio/*.wav."""

from __future__ import annotations

import base64
import io
import math
import shutil
import subprocess
import wave
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from upsampcheck.check import check_layer, check_stack
from upsampcheck.config import find_config
from upsampcheck.model.check import ModelOptions, check_model
from upsampcheck.outputs.folder import write_report_folder
from upsampcheck.report.listening import band_limited_upsample, clip_stem, play_rate_factor
from upsampcheck.subjects.layers import LayerSpec
from upsampcheck.subjects.loading import LoadedModel
from upsampcheck.subjects.stack import load_stack

try:
    import model_fixtures as mf
except ImportError:  # tests/ run as a package
    from tests import model_fixtures as mf

PAGE_LIMIT_BYTES = 5_000_000
URL_ATTRIBUTES = {"src", "href", "poster", "data", "action", "srcset", "background", "formaction"}


class Page(HTMLParser):
    """Every tag with its attributes, and the text of <style> elements."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.styles: list[str] = []
        self._in_style = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)

    def audio(self) -> list[dict[str, str]]:
        return [attrs for tag, attrs in self.tags if tag == "audio"]


def decode_wav(uri: str) -> tuple[int, np.ndarray]:
    assert uri.startswith("data:audio/wav;base64,")
    with wave.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as wav:
        assert wav.getsampwidth() == 2
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return wav.getframerate(), frames.reshape(-1, wav.getnchannels())


def write(report, tmp_path: Path) -> tuple[Path, str]:
    folder = write_report_folder(report, report.to_json(), tmp_path / "report")
    return folder, (folder / "report.html").read_text(encoding="utf-8")


def expected_rates(report) -> dict[str, float]:
    """Clip-name stem -> the rate its WAV must have: the stage's output rate (times the
    integer factor that lifts a sub-audio rate to a playable one)."""
    rates = {clip_stem(s.name): s.fs_out_hz for s in report.stages}
    rates["output"] = report.sample_rate_hz
    return {stem: rate * play_rate_factor(rate) for stem, rate in rates.items()}


def assert_self_contained_with_playable_audio(report, tmp_path: Path) -> tuple[Path, Page]:
    folder, html = write(report, tmp_path)
    assert len(html.encode()) < PAGE_LIMIT_BYTES
    page = Page(html)
    tags = {tag for tag, _ in page.tags}
    assert not tags & {"script", "link", "iframe", "object", "embed", "base"}
    for tag, attrs in page.tags:
        for key, value in attrs.items():
            if key in URL_ATTRIBUTES:
                assert value.startswith(("data:", "#")), (tag, key, value[:80])
    assert all("url(" not in style and "@import" not in style for style in page.styles)
    rates = expected_rates(report)
    players = page.audio()
    assert players, "the page offers nothing to hear"
    for player in players:
        name = player["data-clip"]
        stem = max((s for s in rates if name.startswith(s + "_")), key=len)
        rate, samples = decode_wav(player["src"])
        assert rate == round(rates[stem]), name
        assert np.abs(samples).max() > 0, f"{name} is silent"
        on_disk = folder / "audio" / f"{name}.wav"
        assert (
            on_disk.is_file()
            and decode_wav(
                "data:audio/wav;base64," + base64.b64encode(on_disk.read_bytes()).decode()
            )[1].tolist()
            == samples.tolist()
        )
    assert {tag for tag, attrs in page.tags if tag == "img"}, "no figure"
    return folder, page


def test_layer_page_is_self_contained_and_plays_its_dc_offset_at_true_level(tmp_path):
    # Default init with a bias: silence comes out as the bias, a constant.
    report = check_layer(LayerSpec("transposed", stride=4, length=8), 16000)
    folder, page = assert_self_contained_with_playable_audio(report, tmp_path)
    layer = report.stages[0]
    true = {p["data-clip"]: decode_wav(p["src"])[1][:, 0] for p in page.audio()}
    silence = true["transposed_silence"]
    expected = layer.measurement.excerpts["silence"]
    assert np.allclose(silence, np.round(np.clip(expected, -1, 1) * 32767), atol=1)
    assert np.ptp(expected) < 1e-6 and abs(expected[0]) > 1e-3  # DC, not silence
    # The normalised clip is the true one, mean removed, scaled to a -1 dBFS peak, by the
    # gain the page says.
    norm = true["transposed_noise_norm"].astype(float)
    assert 20 * math.log10(np.abs(norm).max() / 32767) == pytest.approx(-1.0, abs=0.01)
    assert abs(norm.mean()) < 0.01 * np.abs(norm).max()
    centred = true["transposed_noise"] - true["transposed_noise"].mean()
    gain_db = 20 * math.log10(np.abs(norm).max() / np.abs(centred).max())
    html = (folder / "report.html").read_text()
    louder = "louder" if gain_db > 0 else "quieter"
    assert f"normalised, mean removed: {abs(gain_db):.1f} dB {louder} than true level" in html
    # The constant silence response has nothing to hear once its mean is gone: no normalised
    # player (it would play two thumps), and a sentence that says why.
    assert "transposed_silence_norm" not in true
    assert "No normalised player for the response to silence" in html


def test_stack_page_plays_every_stage_and_the_output_sweep(tmp_path):
    report = check_stack(load_stack(find_config("fig8_transposed")))
    _, page = assert_self_contained_with_playable_audio(report, tmp_path)
    names = {p["data-clip"] for p in page.audio()}
    for stem in ("1_transposed", "2_transposed", "3_transposed", "output"):
        assert {f"{stem}_silence", f"{stem}_noise", f"{stem}_dc"} <= names
    # The first stage turns silence into its bias, a constant: nothing to normalise. Later
    # stages make a buzz of it, which the normalised player plays with the mean removed.
    assert "1_transposed_silence_norm" not in names
    assert {"2_transposed_silence_norm", "3_transposed_silence_norm"} <= names
    assert "output_silence_norm" in names
    assert "output_sweep" in names


def test_model_page_plays_each_stage_at_its_rate(tmp_path):
    loaded = LoadedModel(mf.TransposedStack().eval(), "module")
    report = check_model(loaded, ModelOptions(sample_rate=16000, input_shape=(4, 4096)))
    assert [s.fs_out_hz for s in report.stages] == [4000.0, 16000.0]
    _, page = assert_self_contained_with_playable_audio(report, tmp_path)
    rates = {p["data-clip"].split("_")[1]: decode_wav(p["src"])[0] for p in page.audio()}
    assert rates["1"] == 8000  # 4 kHz lifted x2 to be playable in a browser
    assert rates["3"] == 16000


def test_band_limited_upsampling_is_exact_for_a_periodic_tone():
    n, k, factor = 64, 5, 3
    t = np.arange(n * factor) / factor
    x = np.cos(2 * np.pi * k * np.arange(n) / n + 0.3)
    y = band_limited_upsample(x, factor)
    assert np.allclose(y, np.cos(2 * np.pi * k * t / n + 0.3), atol=1e-12)
    assert np.allclose(y[::factor], x, atol=1e-12)
    assert play_rate_factor(689.0625) == 12 and play_rate_factor(22050) == 1


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium here")
def test_page_renders_in_headless_chromium(tmp_path):
    from PIL import Image

    report = check_stack(load_stack(find_config("fig8_transposed")))
    folder, _ = write(report, tmp_path)
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1280,1600", (folder / "report.html").as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1600, 1280)
    assert pixels.std() > 10  # text and figures, not a blank page
    assert (pixels < 60).mean() > 0.005  # dark text was drawn


def test_a_stage_whose_dc_probe_shows_lines_offers_that_response_to_hear(tmp_path):
    report = check_layer(
        LayerSpec("transposed", stride=4, length=5, init="ones", bias=False), 16000
    )
    assert any(line.probe == "dc" for line in report.stages[0].measurement.lines)
    _, page = assert_self_contained_with_playable_audio(report, tmp_path)
    true = {p["data-clip"]: decode_wav(p["src"])[1][:, 0].astype(float) for p in page.audio()}
    dc = true["transposed_dc"]
    # ones-kernel, length 5, stride 4: phase sums [2, 1, 1, 1] times the DC probe's level,
    # so the response repeats every 4 samples with one phase at twice the others
    period = dc[4:8] / dc[5]
    assert period.tolist() == pytest.approx([2, 1, 1, 1], rel=0.01) or sorted(
        period.tolist()
    ) == pytest.approx([1, 1, 1, 2], rel=0.01)
    assert "transposed_dc_norm" in true


def test_page_numbers_are_said_honestly():
    from upsampcheck.outputs.html import corner_words, header, level_words

    assert level_words(-200.0) == "none" and level_words(None) == "none"
    assert level_words(-42.04) == "-42.0 dB"
    assert corner_words(None, {}) == "above −3 dB to fs_in/2"
    assert corner_words(0.72, {"0.75": -4.0, "0.9": -5.0}) == "0.720 of fs_in/2"
    rippling = corner_words(0.2, {"0.25": -6.0, "0.5": 8.0, "0.9": -12.0})
    assert rippling.startswith("first at 0.200") and "ripples" in rippling
    findings = [{"severity": s} for s in ("pass", "warn", "info", "fail", "warn")]
    assert "1 fail, 2 warn, 1 info, 1 pass" in header({"findings": findings, "verdict": "fail"})


def test_summary_labels_never_overlap_and_a_line_at_the_nyquist_is_inside_the_panel():
    """Many loud lines close together (the case that collided from three stages up): the
    labels are a list in the corner, and the circle at the Nyquist is drawn whole."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from upsampcheck.outputs.plotting import spectrum_panel

    nyquist = 8000.0
    freqs = np.linspace(0, nyquist, 513)
    lines = [(f, -5.0 - 0.1 * i, "dc") for i, f in enumerate([3900, 4000, 4100, 8000])]
    stage = {
        "name": "s",
        "fs_out_hz": 2 * nyquist,
        "freqs_hz": freqs,
        "spectra": {"dc": np.full(513, -120.0)},
        "grid_hz": [4000.0, 8000.0],
        "lines": lines,
    }
    fig = Figure(figsize=(3, 2), dpi=100)
    ax = fig.add_subplot()
    spectrum_panel(ax, stage, "dc", {"s": "C3"}, 40.0)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == 3  # the three loudest, listed
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    circles = [ln for ln in ax.lines if ln.get_marker() == "o"]
    x_at_nyquist = ax.transData.transform((nyquist, 0))[0]
    radius_px = circles[0].get_markersize() / 72 * fig.dpi / 2
    assert x_at_nyquist + radius_px <= ax.bbox.x1  # the whole circle is inside the frame


def test_the_melgan_stacks_normalised_output_players_are_audible(tmp_path):
    """MelGAN-like: its output under silence is a large DC with the buzz on top. With the mean
    removed before normalising, the buzz plays loud (it was 25 dB under the DC before)."""
    report = check_stack(load_stack(find_config("melgan")))
    _, page = assert_self_contained_with_playable_audio(report, tmp_path)
    clips = {p["data-clip"]: decode_wav(p["src"])[1][:, 0].astype(float) for p in page.audio()}
    true, norm = clips["output_silence"], clips["output_silence_norm"]
    assert abs(true.mean()) > 5 * true.std()  # the true clip is mostly offset
    rms_dbfs = 20 * math.log10(norm.std() / 32767)
    assert abs(norm.mean()) < 0.01 * norm.std() and rms_dbfs > -12.0


def test_audio_spectrum_labels_never_overlap_and_a_line_at_fs_2_is_drawn():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from upsampcheck.outputs.plotting_audio import spectrum_axes

    fs = 22050.0
    freqs = np.linspace(0, fs / 2, 4097)
    close = [5512.5, 5598.6, 5426.4, 5684.8, 11025.0]  # neighbours on an 86 Hz grid, and fs/2
    entry = {
        "freqs_hz": freqs, "average_db": np.full(4097, -60.0), "quiet_db": None,
        "floor_db": np.full(4097, -70.0), "grid_hz": fs / 256, "sample_rate_hz": fs,
        "lines": [(f, -3.0 - i, True, True) for i, f in enumerate(close)],
    }  # fmt: skip
    fig = Figure(figsize=(8, 4.2), dpi=100)
    ax = fig.add_subplot()
    spectrum_axes(ax, entry)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    boxes = [t.get_window_extent(canvas.get_renderer()) for t in ax.texts]
    assert len(boxes) == 5
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert ax.transData.transform((fs / 2, 0))[0] + 3 <= ax.bbox.x1  # the fs/2 circle is inside
