"""``upsampcheck model`` (issue 4): real models built from code and small fixtures, in every
checkpoint format, against the formulas of docs/method.md; every refusal exits 2 with one line."""

from __future__ import annotations

import json
import pathlib
import pickle
import random
import warnings

import numpy as np
import pytest
import torch
from oracles import box, dc_line_levels, kernel_response_db

from upsampcheck.check import check_layer
from upsampcheck.model.check import ModelOptions, check_model
from upsampcheck.subjects.discover import discover, tap
from upsampcheck.subjects.layers import LayerSpec, polyphase_sums
from upsampcheck.subjects.loading import LoadedModel, load_model

try:
    import model_fixtures as mf
except ImportError:  # tests/ run as a package
    from tests import model_fixtures as mf

pytest.importorskip("torchaudio")

TASNET = "torchaudio.models:conv_tasnet_base"
TASNET_SHAPE = (1, 12288)  # settles in one pass: 2 periods of 2048 with 4096 samples each side
LEVEL_TOLERANCE_DB = 0.5


def module(model: torch.nn.Module) -> LoadedModel:
    return LoadedModel(model.eval(), "module")


def run(loaded: LoadedModel, sample_rate: float, shape=None, **options):
    return check_model(loaded, ModelOptions(sample_rate=sample_rate, input_shape=shape, **options))


def lines_of(measurement, probe: str = "dc") -> dict[float, float]:
    return {round(ln.freq_hz): ln.level_db for ln in measurement.lines if ln.probe == probe}


def stages_of(report) -> list[tuple]:
    return [(s.name, s.kind, s.factor, s.fs_in_hz, s.fs_out_hz) for s in report.stages]


def assert_stages(report, expected: list[tuple]) -> None:
    """Stages as (name, kind, factor, fs_in, fs_out) tuples: text exact, rates to 1e-9."""
    got = stages_of(report)
    assert [g[:2] for g in got] == [e[:2] for e in expected]
    assert [g[2:] for g in got] == [pytest.approx(e[2:], rel=1e-9) for e in expected]


def finding(report, check: str, stage: str):
    return next(f for f in report.findings if f.check == check and f.stage == stage)


def quiet_trace(model: torch.nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():  # torch.jit is deprecated in torch 2.14
        warnings.simplefilter("ignore")
        return torch.jit.trace(model, example, check_trace=False)


def save_every_format(model: torch.nn.Module, example: torch.Tensor, root: pathlib.Path) -> dict:
    """The model as a state dict, safetensors, TorchScript and torch.export archive."""
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, root / "model.pt")
    save_file(state, root / "model.safetensors")
    quiet_trace(model, example).save(str(root / "model.ts"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.save(torch.export.export(model, (example,)), root / "model.pt2")
    return {
        "state_dict": root / "model.pt",
        "safetensors": root / "model.safetensors",
        "torchscript": root / "model.ts",
        "torch_export": root / "model.pt2",
    }


def load_format(path: pathlib.Path, arch: str) -> LoadedModel:
    trust = path.suffix in (".ts", ".pt2")
    return load_model(path, None if trust else arch, trust_checkpoint=trust)


# ---- Conv-TasNet: one x8 transposed stage, lines at multiples of fs/8 on DC ---------------


@pytest.fixture(scope="module")
def tasnet(tmp_path_factory):
    """conv_tasnet_base as ``--arch`` builds it (seed 0), its report at 8 kHz, and its files."""
    loaded = load_model(None, TASNET, seed=0)
    report = run(loaded, 8000, TASNET_SHAPE)
    root = tmp_path_factory.mktemp("tasnet")
    files = save_every_format(loaded.module, torch.zeros(1, *TASNET_SHAPE), root)
    return loaded, report, files


def test_conv_tasnet_has_one_x8_stage_with_dc_lines_at_multiples_of_1khz(tasnet):
    loaded, report, _ = tasnet
    assert stages_of(report) == [("decoder", "transposed", 8, 1000.0, 8000.0)]
    stage = report.stages[0]
    dc = lines_of(stage.measurement)
    assert sorted(dc) == [1000, 2000, 3000, 4000]
    assert all(ln.on_grid and ln.origin == "decoder" for ln in stage.measurement.lines)
    assert all(level > -40 for level in dc.values())  # loud enough to fail
    # The model's output carries the same lines, traced to the decoder.
    assert {round(ln.freq_hz) for ln in report.output_lines if ln.probe == "dc"} == set(dc)
    assert {ln.origin for ln in report.output_lines} == {"decoder"}
    weight = loaded.module.decoder.weight.detach().double()
    sums = polyphase_sums(weight, 8).mean(0).numpy()
    np.testing.assert_allclose(stage.details["polyphase_sums"], sums, atol=1e-5)
    assert report.verdict == "fail" and finding(report, "tonal", "decoder").severity == "fail"
    assert report.subject == {"kind": "model", "input_shape": [1, 12288]}


def test_conv_tasnet_decoder_alone_matches_the_summed_polyphase_formula(tasnet):
    """The decoder driven alone (DC on all 512 inputs) gives |W_m| of the summed kernel."""
    loaded, report, _ = tasnet
    weight = loaded.module.decoder.weight.detach().double().numpy()
    expected = {round(f): level for f, level in dc_line_levels(weight, 8, 8000).items()}
    measured = lines_of(report.stages[0].details["standalone"])
    assert sorted(measured) == sorted(expected) == [1000, 2000, 3000, 4000]
    for freq, level in expected.items():
        assert measured[freq] == pytest.approx(level, abs=LEVEL_TOLERANCE_DB)


def test_conv_tasnet_chain_lines_follow_the_polyphase_formula_on_the_decoder_input(tasnet):
    """Under DC the decoder's input is a constant c_i per channel (and source), so its output
    phases are v_r = sum_i c_i P_ir and its lines |V_m| (the DFT of v): the measured levels,
    relative to the Nyquist line, match within 0.5 dB."""
    loaded, report, _ = tasnet
    model = loaded.module
    x = torch.full((1, *TASNET_SHAPE), 0.1)
    _, taps = tap(model, x, discover(model, x).stages)
    frames = taps["decoder"][0].double()  # (sources, 512, frames)
    c = frames[..., frames.shape[-1] // 4 : -frames.shape[-1] // 4].mean(-1)
    weight = model.decoder.weight.detach().double()  # (512, 1, 16): two taps per phase
    sums = weight[:, 0].reshape(weight.shape[0], -1, 8).sum(1)  # P_ir, (512, 8)
    spectrum = torch.fft.fft(c @ sums, dim=-1).abs().pow(2).mean(0)  # mean over sources
    power = {1000 * m: (1 if m == 4 else 2) * spectrum[m].item() for m in range(1, 5)}
    expected = {f: 10 * np.log10(p / power[4000]) for f, p in power.items()}
    measured = lines_of(report.stages[0].measurement)
    relative = {f: level - measured[4000] for f, level in measured.items()}
    assert relative == pytest.approx(expected, abs=LEVEL_TOLERANCE_DB)


def test_conv_tasnet_image_rejection_is_measured_in_the_chain_at_its_own_rate(tasnet):
    """The decoder's input runs at fs/8 = 1 kHz: the multitone folds onto every odd bin of its
    band, so its image rejection is read in the chain on the bin nearest 125 Hz, no stand-in."""
    _, report, _ = tasnet
    m = report.stages[0].measurement
    assert abs(m.image_tone_hz - 125.0) <= m.bin_hz
    assert m.image_rejection_db is not None and m.periodicity_error_db < -60
    assert not any("driven alone" in note for note in report.notes)


@pytest.mark.parametrize("fmt", ["state_dict", "safetensors", "torchscript", "torch_export"])
def test_conv_tasnet_gives_the_same_stages_in_every_format(tasnet, fmt):
    _, expected, files = tasnet
    loaded = load_format(files[fmt], TASNET)
    assert loaded.source == fmt
    # The .pt2 holds its example input (1, 1, 4096): the shape comes from there.
    report = run(loaded, 8000, None if fmt == "torch_export" else TASNET_SHAPE)
    assert stages_of(report) == stages_of(expected)
    got, want = report.stages[0], expected.stages[0]
    assert got.details["polyphase_sums"] == want.details["polyphase_sums"]
    assert lines_of(got.measurement) == pytest.approx(lines_of(want.measurement), abs=0.05)
    if fmt == "torch_export":
        assert any("from the archive's example input" in note for note in report.notes)


# ---- resamplers: found as one x3 stage; zero insertion fails -----------------------------


def test_torchaudio_resample_16_to_48k_is_one_x3_stage_and_passes():
    report = run(module(mf.TorchaudioResample(16000, 48000)), 48000, (1, 8192))
    assert stages_of(report) == [("<root>", "shape-growth", 3, 16000.0, 48000.0)]
    m = report.stages[0].measurement
    assert m.image_rejection_db < -80  # measured -84 dB (Hann sinc, 6 zero crossings)
    assert (m.max_line_db or -200) < report.thresholds.tonal_warn_db
    assert report.verdict == "pass"


def test_zero_insertion_fails_with_0_db_image_rejection():
    report = run(module(mf.ZeroInsertion(3)), 48000, (1, 8192))
    assert stages_of(report) == [("<root>", "shape-growth", 3, 16000.0, 48000.0)]
    m = report.stages[0].measurement
    assert m.image_rejection_db == pytest.approx(0.0, abs=0.1)
    # Zero insertion is a transposed conv with the kernel [1]: P = [1, 0, 0], -1.76 dB at 16 kHz.
    expected = dc_line_levels(np.ones((1, 1, 1)), 3, 48000)
    assert list(expected) == [16000.0] and expected[16000.0] == pytest.approx(-1.76, abs=0.01)
    assert lines_of(m)[16000] == pytest.approx(expected[16000.0], abs=LEVEL_TOLERANCE_DB)
    assert report.verdict == "fail"
    assert finding(report, "replicas", "<root>").severity == "warn"
    assert finding(report, "tonal", "<root>").severity == "fail"


def test_julius_style_sinc_resampler_is_tone_free_and_passes():
    report = run(module(mf.SincResampler(3)), 48000, (1, 8192))
    assert stages_of(report) == [("<root>", "shape-growth", 3, 16000.0, 48000.0)]
    stage = report.stages[0]
    for m in (stage.measurement, stage.details["standalone"]):
        assert (m.max_line_db or -200) < -100  # equal phase DC gains: nothing but float dust
        assert m.image_rejection_db < -100  # measured -113 dB
        assert m.response_db["0.9"] > -3.0  # rolloff 0.945: flat to 0.9 of the band
    assert report.verdict == "pass"
    assert {f.severity for f in report.findings} == {"pass"}


@pytest.mark.parametrize("fmt", ["state_dict", "safetensors", "torchscript", "torch_export"])
def test_sinc_resampler_gives_the_same_report_in_every_format(tmp_path, fmt):
    model = mf.SincResampler(3).eval()
    files = save_every_format(model, torch.zeros(1, 1, 8192), tmp_path)
    expected = run(module(model), 48000, (1, 8192))
    report = run(load_format(files[fmt], "model_fixtures:SincResampler"), 48000, (1, 8192))
    assert stages_of(report) == stages_of(expected)
    got = report.stages[0].measurement.image_rejection_db
    assert got == pytest.approx(expected.stages[0].measurement.image_rejection_db, abs=1.0)
    assert report.verdict == "pass"


# ---- standalone numbers match `upsampcheck layer` ------------------------------------------


def test_a_stage_driven_alone_matches_upsampcheck_layer_for_the_same_layer():
    """ConvTranspose1d(1, 1, 5, 4), ones, no bias: -10.0 dB at fs/4, -13.0 dB at fs/2."""
    fs = 16000.0
    report = run(module(mf.OnesTransposed(4, 5)), fs, (1, 2048))
    assert stages_of(report) == [("up", "transposed", 4, 4000.0, 16000.0)]
    alone = lines_of(report.stages[0].details["standalone"])
    expected = dc_line_levels(np.ones((1, 1, 5)), 4, fs)
    assert sorted(alone) == [4000, 8000]
    assert alone[4000] == pytest.approx(-10.0, abs=LEVEL_TOLERANCE_DB)
    assert alone[8000] == pytest.approx(-13.0, abs=LEVEL_TOLERANCE_DB)
    for freq, level in expected.items():
        assert alone[round(freq)] == pytest.approx(level, abs=LEVEL_TOLERANCE_DB)
    layer = check_layer(LayerSpec("transposed", 4, 5, bias=False, init="ones"), fs)
    assert alone == pytest.approx(lines_of(layer.stages[0].measurement), abs=0.5)
    # The model's input is the stage's input here, so the chain agrees as well.
    assert lines_of(report.stages[0].measurement) == pytest.approx(alone, abs=0.5)
    assert report.stages[0].details["polyphase_sums"] == [2.0, 1.0, 1.0, 1.0]


def test_every_replayable_stage_is_also_driven_alone():
    report = run(module(mf.TransposedStack()), 16000, (4, 256))
    assert [s.name for s in report.stages] == ["decoder.1", "decoder.3"]
    assert all("standalone" in s.details for s in report.stages)
    assert all("standalone" in s for s in report.to_json()["stages"])


# ---- HDemucs and WaveRNN -----------------------------------------------------------------


def test_hdemucs_low_time_stages_at_their_rates_and_frequency_growth_as_info():
    loaded = load_model(None, "torchaudio.models:hdemucs_low", {"sources": ["drums", "bass"]})
    report = run(loaded, 44100, (2, 16384), standalone=False)
    ct = "transposed"
    assert_stages(
        report,
        [
            # The deepest frequency-branch layer upsamples spectrogram frames (hop 256, then x2).
            ("freq_decoder.0.conv_tr", ct, 2, 44100 / 512, 44100 / 256),
            ("time_decoder.0.conv_tr", ct, 4, 44100 / 256, 44100 / 64),
            ("time_decoder.1.conv_tr", ct, 4, 44100 / 64, 44100 / 16),
            ("time_decoder.2.conv_tr", ct, 4, 44100 / 16, 44100 / 4),
            ("time_decoder.3.conv_tr", ct, 4, 44100 / 4, 44100),
        ],
    )
    info = {f.stage: f.message for f in report.findings if f.check == "discovery"}
    for i in range(1, 5):  # frequency-axis ConvTranspose2d: info, never a time stage
        assert "ConvTranspose2d grows a non-time axis" in info[f"freq_decoder.{i}.conv_tr"]
    assert "its input is complex" in info["<root>:istft"]  # frames -> samples, not probed
    last = report.stages[-1].measurement
    assert {11025, 22050} <= set(lines_of(last))  # its own DC lines, on its 11025 Hz grid
    assert all(ln.on_grid for ln in last.lines if ln.probe == "dc")


@pytest.fixture(scope="module")
def wavernn():
    loaded = load_model(None, "model_fixtures:wavernn_upsampler", seed=0)
    return loaded, run(loaded, 22050, (80, 128))


WAVERNN_STAGES = [
    ("resnet_stretch:repeat_interleave", "repeat_interleave", 275, 22050 / 275, 22050.0),
    ("upsample_layers.0:repeat_interleave", "repeat_interleave", 5, 22050 / 275, 22050 / 55),
    ("upsample_layers.2:repeat_interleave", "repeat_interleave", 5, 22050 / 55, 22050 / 11),
    ("upsample_layers.4:repeat_interleave", "repeat_interleave", 11, 22050 / 11, 22050.0),
]


def test_wavernn_upsampler_is_filtering_without_tonal_failure(wavernn):
    """Hold (repeat_interleave) then a box conv: the hold's response is the box kernel's,
    with zeros on every m fs_in, so DC makes no lines."""
    _, report = wavernn
    assert_stages(report, WAVERNN_STAGES)
    assert not [f for f in report.findings if f.check == "tonal" and f.severity == "fail"]
    assert report.verdict == "pass"
    for stage in report.stages:
        alone = stage.details["standalone"]
        assert lines_of(stage.measurement) == lines_of(alone) == {}
        if stage.factor > 11:  # x275: 8 Welch bins across its input band, too coarse to pin
            continue
        for point in ("0.25", "0.5", "0.75", "0.9"):  # the hold is the box kernel
            expected = kernel_response_db(box(stage.factor), stage.factor, float(point))
            assert alone.response_db[point] == pytest.approx(expected, abs=0.1)
    # The droop is the finding: about -3 dB at 0.9 of each band, right at the warn threshold.
    assert {f.stage for f in report.findings if f.check == "filtering"} == {
        name for name, *_ in WAVERNN_STAGES
    }


def test_wavernn_upsampler_exported_gives_the_same_stages(wavernn, tmp_path):
    loaded, expected = wavernn
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(loaded.module, (torch.zeros(1, 80, 128),))
    torch.export.save(program, tmp_path / "up.pt2")
    report = run(load_model(tmp_path / "up.pt2", trust_checkpoint=True), 22050)
    assert stages_of(report) == stages_of(expected)
    assert report.verdict == "pass"


@pytest.mark.xfail(
    strict=True,
    reason="TorchScript runs repeat_interleave(int) as expand + reshape below any hook",
)
def test_wavernn_upsampler_as_torchscript_gives_the_same_stages(wavernn, tmp_path):
    loaded, expected = wavernn
    quiet_trace(loaded.module, torch.zeros(1, 80, 128)).save(str(tmp_path / "up.ts"))
    report = run(load_model(tmp_path / "up.ts", trust_checkpoint=True), 22050, (80, 128))
    assert stages_of(report) == stages_of(expected)


# ---- every discovery path, through check_model ---------------------------------------------

# fixture, input shape, method, measured stages (name, factor, fs_in at 16 kHz out)
PATHS = {
    "transposed": (mf.TransposedStack, (4, 64), "forward", [("decoder.1", 2, 2000.0),
                                                           ("decoder.3", 4, 4000.0)]),
    "weight_norm": (mf.WeightNormTransposed, (4, 64), "forward", [("up", 2, 4000.0),
                                                                  ("up_old", 2, 8000.0)]),
    "upsample": (mf.UpsampleConv, (4, 64), "forward", [("up", 2, 8000.0)]),
    "interpolate": (mf.InterpolateBlocks, (4, 64), "forward",
                    [("blocks.0:interpolate", 2, 4000.0), ("blocks.1:interpolate", 2, 8000.0)]),
    "functional": (mf.FunctionalTransposed, (4, 64), "forward",
                   [("<root>:conv_transpose1d", 4, 4000.0)]),
    "repeat_interleave": (mf.RepeatInterleave, (4, 64), "forward",
                          [("hold:repeat_interleave", 3, 16000 / 6),
                           ("hold:repeat_interleave#2", 2, 8000.0)]),
    "pixel_shuffle": (mf.PixelShuffleTime, (4, 64), "forward",
                      [("shuffle:pixel_shuffle", 2, 8000.0)]),
    "subpixel_reshape": (mf.SubpixelReshape, (4, 64), "forward", [("up", 3, 16000 / 3)]),
    "zero_insert": (mf.ZeroInsert, (4, 64), "forward", [("stuff", 2, 8000.0)]),
    "fold": (mf.FoldOverlapAdd, (4, 64), "forward", [("ola:fold", 4, 4000.0)]),
    "istft": (mf.ISTFTSynth, (33, 64), "forward", []),  # complex input: found, not measured
    "other_axis": (mf.FreqTransposed2d, (2, 8, 64), "forward", []),
    "recovers": (mf.RecoversFromError, (4, 64), "forward", [("up", 2, 4000.0),
                                                            ("<root>:interpolate", 2, 8000.0)]),
    "tuple_output": (mf.TupleOutput, (4, 64), "forward", [("up", 2, 8000.0)]),
    "dict_output": (mf.DictOutput, (4, 64), "forward", [("up", 4, 4000.0)]),
    "decode": (mf.Codec, (8, 64), "decode", [("decoder", 4, 2000.0),
                                             ("<root>:interpolate", 2, 8000.0)]),
}  # fmt: skip


@pytest.mark.parametrize("case", PATHS)
def test_every_discovery_path_is_measured_at_its_rate(case):
    cls, shape, method, expected = PATHS[case]
    torch.manual_seed(0)
    model = cls().eval()
    report = run(module(model), 16000, shape, method=method)
    assert [s.name for s in report.stages] == [name for name, _, _ in expected]
    got = [(s.factor, s.fs_in_hz) for s in report.stages]
    assert got == [pytest.approx(e[1:], rel=1e-9) for e in expected]
    found = discover(model, torch.zeros(1, *shape), method)
    unmeasured = {s.name for s in found.stages} - {s.name for s in report.stages}
    info = {f.stage for f in report.findings if f.check == "discovery"}
    assert unmeasured <= info  # a stage found but not measured says so
    assert {s.name for s in found.other_axis} <= info


def compiled(model: torch.nn.Module, example: torch.Tensor, fmt: str, root: pathlib.Path):
    """``model`` saved as TorchScript or torch.export and loaded back as the CLI loads it."""
    if fmt == "torchscript":
        quiet_trace(model, example).save(str(root / "m.ts"))
        return load_model(root / "m.ts", trust_checkpoint=True).module
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.save(torch.export.export(model, (example,)), root / "m.pt2")
    return load_model(root / "m.pt2", trust_checkpoint=True).module


def discovered(model: torch.nn.Module, x: torch.Tensor, method: str = "forward") -> tuple:
    found = discover(model, x, method)
    return [(s.name, s.kind, s.factor) for s in found.stages], found.other_axis != []


EXPORTABLE = [case for case in PATHS if case not in ("recovers", "decode")]


@pytest.mark.parametrize("case", EXPORTABLE)
def test_exported_fixtures_give_the_stages_eager_discovery_gives(case, tmp_path):
    """A .pt2 runs node by node; each node's module stack names its stages as in eager mode,
    shape-growth submodules included."""
    cls, shape, _, _ = PATHS[case]
    torch.manual_seed(0)
    model, x = cls().eval(), torch.randn(1, *shape)
    assert discovered(compiled(model, x, "torch_export", tmp_path), x) == discovered(model, x)


# TorchScript runs below every hook: transposed convs are named after the module owning their
# weight; other recognised ops after the model; shape-growth only at the model itself.
TORCHSCRIPT = {
    "transposed": None,  # None: as in eager mode
    "functional": None,
    "other_axis": None,
    "upsample": [("<root>:interpolate", "interpolate(nearest)", 2.0)],
    "pixel_shuffle": [("<root>:pixel_shuffle", "pixel_shuffle", 2.0)],
    "subpixel_reshape": [("<root>", "shape-growth", 3.0)],
    "repeat_interleave": [("<root>", "shape-growth", 6.0)],
}


@pytest.mark.parametrize("case", TORCHSCRIPT)
def test_torchscript_fixtures_give_the_documented_stages(case, tmp_path):
    cls, shape, _, _ = PATHS[case]
    torch.manual_seed(0)
    model, x = cls().eval(), torch.randn(1, *shape)
    stages, other = discovered(compiled(model, x, "torchscript", tmp_path), x)
    eager, eager_other = discovered(model, x)
    assert stages == (eager if TORCHSCRIPT[case] is None else TORCHSCRIPT[case])
    assert other == eager_other


# ---- the command line ------------------------------------------------------------------------


def one_line_error(result, tmp_path, *expected: str) -> str:
    assert result.code == 2, result.err
    assert result.err.count("\n") == 1 and result.err.startswith("upsampcheck: error: ")
    assert "Traceback" not in result.err
    assert not (tmp_path / "report").exists()
    for text in expected:
        assert text in result.err
    return result.err


class Touch:
    """A malicious payload: unpickling it creates ``target``."""

    def __init__(self, target: pathlib.Path) -> None:
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (self.target,))


@pytest.mark.parametrize("arch", [None, "model_fixtures:OnesTransposed"])
def test_pickle_that_would_create_a_file_is_refused_and_never_runs(cli, tmp_path, arch):
    target = tmp_path / "pwned"
    torch.save({"model": Touch(target)}, tmp_path / "evil.pt")
    args = ["model", str(tmp_path / "evil.pt"), "--no-plots"] + (["--arch", arch] if arch else [])
    one_line_error(cli(*args), tmp_path, "refusing to load", "--trust-checkpoint")
    assert not target.exists()


def bad_file(kind: str, root: pathlib.Path) -> pathlib.Path:
    path = root / f"{kind}.pt"
    if kind == "random_bytes":
        path.write_bytes(b"\x17" + random.Random(0).randbytes(999))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        torch.save(mf.OnesTransposed().state_dict(), path)
        path.write_bytes(path.read_bytes()[:200])
    elif kind in ("state_dict", "mismatched"):
        torch.save(mf.TransposedStack().state_dict(), path)
    elif kind == "torchscript":
        quiet_trace(mf.OnesTransposed(), torch.zeros(1, 1, 16)).save(str(path))
    elif kind == "pt2":
        compiled(mf.OnesTransposed().eval(), torch.zeros(1, 1, 64), "torch_export", root)
        path = root / "m.pt2"
    return path


BAD_RUNS = {
    # id: (file kind or None, extra args, what the message must say)
    "random_bytes": ("random_bytes", ["--arch", "model_fixtures:OnesTransposed"],
                     ["not a PyTorch checkpoint", "expected a state dict"]),
    "empty": ("empty", ["--arch", "model_fixtures:OnesTransposed"], ["is empty", "re-save"]),
    "truncated": ("truncated", ["--arch", "model_fixtures:OnesTransposed"],
                  ["truncated or corrupt", "re-save or re-download"]),
    "state_dict_without_arch": ("state_dict", [], ["weights only", "pass --arch"]),
    "mismatched_arch": ("mismatched", ["--arch", "model_fixtures:OnesTransposed"],
                        ["does not fit --arch", "missing keys", "give the --arch"]),
    "untrusted_torchscript": ("torchscript", [], ["TorchScript", "--trust-checkpoint"]),
    "wrong_input_shape": (None, ["--arch", "model_fixtures:OnesTransposed",
                                 "--input-shape", "3,64"],
                          ["model failed in 'up' (ConvTranspose1d)", "check --input-shape"]),
    "unparsable_input_shape": (None, ["--arch", "model_fixtures:OnesTransposed",
                                      "--input-shape", "1,x"], ["expected integers like 1,16000"]),
    "no_candidate_shape_fits": (None, ["--arch", "model_fixtures:Failing"],
                                ["refused every candidate", "4,256", "80,256", "--input-shape"]),
    "no_such_method": (None, ["--arch", "model_fixtures:Codec", "--method", "synthesize"],
                       ["no method 'synthesize'"]),
    "no_such_stage": (None, ["--arch", "model_fixtures:TransposedStack", "--stage", "nope"],
                      ["matches no stage (stages: decoder.1, decoder.3)"]),
    "exported_for_another_shape": ("pt2", ["--trust-checkpoint", "--input-shape", "1,128"],
                                   ["input checks", "exported for input shape 1,64"]),
    "nothing_to_load": (None, [], ["--arch"]),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_RUNS)
def test_bad_input_exits_2_with_one_line_that_says_what_to_do(cli, tmp_path, case):
    kind, extra, expected = BAD_RUNS[case]
    args = ["model"] + ([str(bad_file(kind, tmp_path))] if kind else []) + extra
    one_line_error(cli(*args, "--no-plots", out=tmp_path / "report"), tmp_path, *expected)


def test_fresh_arch_is_analysed_as_built_under_the_seed(cli):
    result = cli("model", "--arch", "model_fixtures:TransposedStack", "--seed", "3",
                 "--input-shape", "4,256", "--no-plots", "--format", "json")  # fmt: skip
    assert result.code == 1
    report = result.json()
    assert report["subject"]["kind"] == "model"
    assert report["subject"]["format"] == "arch" and report["subject"]["checkpoint"] is None
    assert report["environment"]["seed"] == 3
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        weight = mf.TransposedStack().decoder[1].weight.detach().double()
    expected = polyphase_sums(weight, 2).mean(0).tolist()
    assert report["stages"][0]["details"]["polyphase_sums"] == pytest.approx(expected, abs=1e-6)


def test_model_without_upsampling_exits_0_and_says_so(cli, tmp_path):
    result = cli("model", "--arch", "model_fixtures:NoUpsampling", "--input-shape", "4,256",
                 "--no-plots", "--format", "json")  # fmt: skip
    assert result.code == 0, result.err
    report = result.json()
    assert report["stages"] == [] and report["verdict"] == "pass"
    said = [f for f in report["findings"] if f["check"] == "discovery"]
    assert len(said) == 1 and said[0]["severity"] == "info"
    assert "no upsampling stage found" in said[0]["message"]
    text = (tmp_path / "report" / "verdict.txt").read_text()
    assert "no upsampling stage found" in text


def test_model_that_outputs_nan_fails_with_a_finding_that_says_so(cli):
    result = cli("model", "--arch", "model_fixtures:NaNOutput", "--input-shape", "1,256",
                 "--no-plots", "--format", "json")  # fmt: skip
    assert result.code == 1
    report = result.json()
    numerics = [f for f in report["findings"] if f["check"] == "numerics"]
    assert len(numerics) == 1 and numerics[0]["severity"] == "fail"
    assert numerics[0]["stage"] == "output" and "NaN" in numerics[0]["message"]
    assert "noise" in numerics[0]["message"]  # log of a negative sample


@pytest.mark.parametrize(
    ("arch", "index"), [("TupleOutput", "output[0]"), ("DictOutput", "output['wave']")]
)
def test_multi_output_models_analyse_the_first_floating_output_and_say_which(cli, arch, index):
    result = cli("model", "--arch", f"model_fixtures:{arch}", "--input-shape", "4,256",
                 "--no-plots", "--format", "json")  # fmt: skip
    notes = result.json()["notes"]
    assert any(note.startswith(f"analysed {index} of shape") for note in notes), notes


def test_method_decode_probes_the_decoder_from_its_latent(cli):
    result = cli("model", "--arch", "model_fixtures:Codec", "--method", "decode",
                 "--input-shape", "8,128", "--no-plots", "--format", "json")  # fmt: skip
    report = result.json()
    assert report["subject"]["method"] == "decode"
    assert [(s["name"], s["factor"], s["fs_in_hz"]) for s in report["stages"]] == [
        ("decoder", 4, 2000.0),
        ("<root>:interpolate", 2, 8000.0),
    ]


def test_stage_focuses_on_the_named_stage_at_the_same_rate(cli):
    base = ["model", "--arch", "model_fixtures:TransposedStack", "--input-shape", "4,256",
            "--no-plots", "--format", "json"]  # fmt: skip
    whole, focused = cli(*base).json(), cli(*base, "--stage", "decoder.3").json()
    assert [s["name"] for s in focused["stages"]] == ["decoder.3"]
    assert focused["stages"][0]["fs_in_hz"] == whole["stages"][1]["fs_in_hz"] == 4000.0
    assert {f["stage"] for f in focused["findings"]} <= {"decoder.3", "output"}


def test_silence_value_shifts_the_silence_probe_and_the_stage_alone_keeps_zeros():
    """Silence at -1 into ConvTranspose1d(1, 1, 5, 4) of ones: the silence probe is 10x the
    nominal level, so its lines sit 20 dB above the DC probe's -10.0 and -13.0 dB."""
    report = run(module(mf.OnesTransposed(4, 5)), 16000, (1, 2048), silence_value=-1.0)
    stage = report.stages[0]
    assert stage.measurement.input_dc_db == pytest.approx(20.0, abs=0.2)  # interior noise RMS
    silence = lines_of(stage.measurement, "silence")
    assert silence[4000] == pytest.approx(10.0, abs=LEVEL_TOLERANCE_DB)
    assert silence[8000] == pytest.approx(7.0, abs=LEVEL_TOLERANCE_DB)
    alone = stage.details["standalone"]
    assert lines_of(alone, "silence") == {} and alone.input_dc_db < -150
    assert lines_of(alone) == pytest.approx({4000: -10.0, 8000: -13.0}, abs=LEVEL_TOLERANCE_DB)


def test_conv_tasnet_command_line_end_to_end(cli, tmp_path, tasnet):
    """The issue's example, shortened: state dict + --arch, JSON on stdout, report on disk."""
    _, expected, files = tasnet
    result = cli("model", str(files["state_dict"]), "--arch", TASNET, "--sample-rate", "8000",
                 "--input-shape", "1,12288", "--no-plots", "--format", "json")  # fmt: skip
    assert result.code == 1
    report = result.json()
    assert report == json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["subject"]["kind"] == "model" and report["subject"]["format"] == "state_dict"
    (stage,) = report["stages"]
    assert (stage["name"], stage["kind"], stage["factor"]) == ("decoder", "transposed", 8)
    assert (stage["fs_in_hz"], stage["fs_out_hz"]) == (1000.0, 8000.0)
    dc = [line["freq_hz"] for line in stage["tonal"]["lines"] if line["probe"] == "dc"]
    assert sorted(round(f) for f in dc) == [1000, 2000, 3000, 4000]
    want = expected.to_json()["stages"][0]["tonal"]["lines"]
    assert [ln["freq_hz"] for ln in stage["tonal"]["lines"]] == [ln["freq_hz"] for ln in want]
    levels = [ln["level_db"] for ln in stage["tonal"]["lines"]]
    assert levels == pytest.approx([ln["level_db"] for ln in want], abs=0.05)


def test_pickled_module_runs_only_with_trust(cli, tmp_path):
    """A full pickle of a module loads with --trust-checkpoint (and is refused without)."""
    torch.save(mf.OnesTransposed(), tmp_path / "whole.pt")
    args = ["model", str(tmp_path / "whole.pt"), "--input-shape", "1,256", "--no-plots"]
    one_line_error(cli(*args), tmp_path, "--trust-checkpoint")
    result = cli(*args, "--trust-checkpoint", "--format", "json")
    assert result.code == 1  # partial overlap: the -10 dB lines fail
    assert result.json()["subject"]["format"] == "pickled_module"


def test_the_malicious_payload_is_live(tmp_path):
    """Guards the refusal test: the payload really creates its file when unpickled."""
    pickle.loads(pickle.dumps(Touch(tmp_path / "ran")))
    assert (tmp_path / "ran").exists()


def test_a_line_made_in_another_branch_is_inherited_not_introduced(cli):
    """``up`` only copies the lines of ``tonal`` (its input has them); ``clean`` ran just before
    ``up`` and has none, so tracing by execution order would blame ``up``."""
    result = cli("model", "--arch", "model_fixtures:ParallelBranches", "--input-shape", "1,4096",
                 "--sample-rate", "32000", "--format", "json", "--no-plots")  # fmt: skip
    report = result.json()
    stages = {s["name"]: s for s in report["stages"]}
    assert set(stages) == {"tonal", "clean", "up"}
    up_lines = [ln for ln in stages["up"]["tonal"]["lines"] if ln["probe"] in ("dc", "silence")]
    assert up_lines and {ln["introduced_by"] for ln in up_lines} == {"tonal"}
    assert not [f for f in report["findings"] if f["check"] == "tonal" and f["stage"] == "up"
                and f["severity"] == "fail"]  # fmt: skip
    output = {ln["introduced_by"] for ln in report["output"]["lines"] if ln["probe"] != "noise"}
    assert output == {"tonal"}


def test_a_decoder_s_latent_input_is_found_by_trying_the_first_weight_s_widths(cli):
    """Codec.decode takes the latent (8 channels), not the waveform the first conv reads (4):
    the 4-channel guess fails, the first weight's other width works, and a note says so."""
    result = cli("model", "--arch", "model_fixtures:Codec", "--method", "decode", "--format",
                 "json", "--no-plots")  # fmt: skip
    assert result.code in (0, 1), result.err
    report = result.json()
    assert [s["name"] for s in report["stages"]][0] == "decoder"
    assert report["stages"][0]["factor"] == 4
    assert any("found by trying candidates" in n and "(refused: 4,256)" in n
               for n in report["notes"])  # fmt: skip


def fixed_length_warnings(report: dict) -> list[dict]:
    return [
        f for f in report["findings"]
        if f["check"] == "discovery" and "does not follow the input" in f["message"]
    ]  # fmt: skip


def test_a_model_whose_output_length_is_fixed_is_analysed_at_the_length_asked_for(cli):
    """nn.Upsample(size=16000) reads as x32 at discovery's 500 samples; at the 8000 asked for
    it is x2, output = factor x input: discovered and probed there, its rates the model's."""
    result = cli("model", "--arch", "model_fixtures:FixedSize", "--input-shape", "1,8000",
                 "--format", "json", "--no-plots")  # fmt: skip
    report = result.json()
    assert not fixed_length_warnings(report)
    assert report["probe_samples"] == 8000
    assert [(s["name"], s["factor"], s["fs_in_hz"]) for s in report["stages"]] == [
        ("up", 2, 8000.0)
    ]
    assert (
        "the model fixes its output at 16000 samples whatever the input length: analysed at "
        "the 8000 input samples asked for, where output = x2 input"
    ) in report["notes"]
