"""Stage discovery and tapping (subjects.discover) on fixtures and real torchaudio models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from upsampcheck.errors import StageError, UsageError
from upsampcheck.subjects.discover import Discovery, Stage, discover, tap

try:
    import model_fixtures as mf
except ImportError:  # tests/ run as a package
    from tests import model_fixtures as mf

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CT1, CT2 = "ConvTranspose1d", "ConvTranspose2d"

# id: (model class, input shape (B=1), method, time stages, other-axis stages, output index)
# stages: (name, kind, factor, in_shape, out_shape)
CASES = {
    "transposed": (
        mf.TransposedStack,
        (1, 4, 32),
        "forward",
        [
            ("decoder.1", CT1, 2.0, (1, 8, 32), (1, 8, 64)),
            ("decoder.3", CT1, 4.0, (1, 8, 64), (1, 4, 256)),
        ],
        [],
        "output",
    ),
    "weight_norm": (
        mf.WeightNormTransposed,
        (1, 4, 16),
        "forward",
        [
            ("up", CT1, 2.0, (1, 4, 16), (1, 4, 32)),
            ("up_old", CT1, 2.0, (1, 4, 32), (1, 4, 64)),
        ],
        [],
        "output",
    ),
    "upsample": (
        mf.UpsampleConv,
        (1, 4, 16),
        "forward",
        [("up", "Upsample(nearest)", 2.0, (1, 4, 16), (1, 4, 32))],
        [],
        "output",
    ),
    "interpolate": (
        mf.InterpolateBlocks,
        (1, 4, 16),
        "forward",
        [
            ("blocks.0:interpolate", "interpolate(linear)", 2.0, (1, 4, 16), (1, 4, 32)),
            ("blocks.1:interpolate", "interpolate(linear)", 2.0, (1, 4, 32), (1, 4, 64)),
        ],
        [],
        "output",
    ),
    "functional_transposed": (
        mf.FunctionalTransposed,
        (1, 4, 16),
        "forward",
        [("<root>:conv_transpose1d", "conv_transpose1d", 4.0, (1, 4, 16), (1, 2, 64))],
        [],
        "output",
    ),
    "repeat_interleave": (
        mf.RepeatInterleave,
        (1, 4, 16),
        "forward",
        [
            ("hold:repeat_interleave", "repeat_interleave", 3.0, (1, 8, 16), (1, 8, 48)),
            ("hold:repeat_interleave#2", "repeat_interleave", 2.0, (1, 8, 48), (1, 8, 96)),
        ],
        [],
        "output",
    ),
    "pixel_shuffle": (
        mf.PixelShuffleTime,
        (1, 4, 16),
        "forward",
        [("shuffle:pixel_shuffle", "pixel_shuffle", 2.0, (1, 16, 1, 16), (1, 4, 2, 32))],
        [],
        "output",
    ),
    "subpixel_reshape": (
        mf.SubpixelReshape,
        (1, 4, 16),
        "forward",
        [("up", "shape-growth", 3.0, (1, 4, 16), (1, 4, 48))],
        [],
        "output",
    ),
    "zero_insert": (
        mf.ZeroInsert,
        (1, 4, 16),
        "forward",
        [("stuff", "shape-growth", 2.0, (1, 4, 16), (1, 4, 32))],
        [],
        "output",
    ),
    "fold": (
        mf.FoldOverlapAdd,
        (1, 4, 16),
        "forward",
        [("ola:fold", "fold", 4.0, (1, 8, 16), (1, 1, 1, 68))],
        [],
        "output",
    ),
    "istft": (
        mf.ISTFTSynth,
        (1, 33, 9),
        "forward",
        [("synth:istft", "istft", 16.0, (1, 33, 9), (1, 128))],
        [],
        "output",
    ),
    "freq_only_2d": (
        mf.FreqTransposed2d,
        (1, 2, 8, 16),
        "forward",
        [],
        [("up", CT2, 2.0, (1, 2, 8, 16), (1, 2, 16, 16))],
        "output",
    ),
    "noop_interpolate": (mf.NoOpInterpolate, (1, 4, 16), "forward", [], [], "output"),
    "downsampler": (mf.Downsampler, (1, 4, 16), "forward", [], [], "output"),
    "no_upsampling": (mf.NoUpsampling, (1, 4, 8), "forward", [], [], "output"),
    "recovers_from_error": (
        mf.RecoversFromError,
        (1, 4, 16),
        "forward",
        [
            ("up", CT1, 2.0, (1, 4, 16), (1, 4, 32)),
            ("<root>:interpolate", "interpolate(nearest)", 2.0, (1, 4, 32), (1, 4, 64)),
        ],
        [],
        "output",
    ),
    "tuple_output": (
        mf.TupleOutput,
        (1, 4, 16),
        "forward",
        [("up", CT1, 2.0, (1, 4, 16), (1, 1, 32))],
        [],
        "output[0]",
    ),
    "dict_output": (
        mf.DictOutput,
        (1, 4, 16),
        "forward",
        [("up", "Upsample(linear)", 4.0, (1, 4, 16), (1, 4, 64))],
        [],
        "output['wave']",
    ),
    "decode_method": (
        mf.Codec,
        (1, 8, 8),
        "decode",
        [
            ("decoder", CT1, 4.0, (1, 8, 8), (1, 4, 32)),
            ("<root>:interpolate", "interpolate(nearest)", 2.0, (1, 4, 32), (1, 4, 64)),
        ],
        [],
        "output",
    ),
}


def _summary(stages: list[Stage]) -> list[tuple]:
    return [(s.name, s.kind, s.factor, s.in_shape, s.out_shape) for s in stages]


def _hooks(model: nn.Module) -> dict[str, tuple]:
    """Every hook dict of every submodule, to compare before/after a pass."""
    attrs = (
        "_forward_hooks",
        "_forward_pre_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_hooks_always_called",
        "_forward_pre_hooks_with_kwargs",
    )
    return {n: tuple(tuple(getattr(m, a)) for a in attrs) for n, m in model.named_modules()}


def _build(case: str) -> tuple[nn.Module, torch.Tensor, str]:
    cls, shape, method, *_ = CASES[case]
    torch.manual_seed(0)
    return cls().eval(), torch.randn(shape), method


def _assert_clean(model: nn.Module, before: dict[str, tuple]) -> None:
    assert _hooks(model) == before
    assert torch._C._len_torch_function_stack() == 0


@pytest.mark.parametrize("case", CASES)
def test_discover_finds_exact_stages(case):
    model, x, method = _build(case)
    _, _, _, stages, other, index = CASES[case]
    before = _hooks(model)
    found = discover(model, x, method)
    _assert_clean(model, before)
    assert isinstance(found, Discovery)
    assert _summary(found.stages) == stages
    assert _summary(found.other_axis) == other
    assert all(s.time_axis for s in found.stages)
    assert not any(s.time_axis for s in found.other_axis)
    assert found.output_index == index


@pytest.mark.parametrize("case", CASES)
def test_tap_and_replay_agree(case):
    model, _, method = _build(case)
    shape = CASES[case][1]
    found = discover(model, torch.randn(shape), method)
    stages = found.stages + found.other_axis
    x = torch.randn((3, *shape[1:]))  # another batch size than at discovery
    before = _hooks(model)
    out, taps = tap(model, x, stages, method)
    _assert_clean(model, before)
    assert out.shape == (3, *found.output_shape[1:])
    assert set(taps) == {s.name for s in stages}
    for s in stages:
        x_in, y_out = taps[s.name]
        assert x_in.shape == (3, *s.in_shape[1:]) and y_out.shape == (3, *s.out_shape[1:])
        assert x_in.grad_fn is None and y_out.grad_fn is None
        assert s.replay is not None
        torch.testing.assert_close(s.replay(x_in), y_out)


def test_module_stage_absorbs_its_functional_call():
    for case in ("transposed", "weight_norm", "upsample", "tuple_output", "dict_output"):
        model, x, method = _build(case)
        found = discover(model, x, method)
        assert all(":" not in s.name for s in found.stages), case
        assert all(isinstance(s.module, nn.Module) for s in found.stages), case
    model, x, _ = _build("weight_norm")
    up = discover(model, x).stages[0]
    assert up.module is model.up and isinstance(up.module, nn.ConvTranspose1d)


def test_functional_and_shape_growth_stages():
    model, x, _ = _build("interpolate")
    assert all(s.module is None for s in discover(model, x).stages)
    model, x, _ = _build("subpixel_reshape")
    (up,) = discover(model, x).stages
    assert up.module is model.up and up.length_ratio == 3.0


def test_shared_module_called_twice_gets_numbered_names():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = nn.ConvTranspose1d(2, 2, 4, stride=2, padding=1)

        def forward(self, x):
            return self.up(self.up(x))

    model = Twice()
    found = discover(model, torch.randn(1, 2, 8))
    assert [(s.name, s.in_shape[-1]) for s in found.stages] == [("up", 8), ("up#2", 16)]
    _, taps = tap(model, torch.randn(2, 2, 8), found.stages)
    assert taps["up#2"][0].shape == (2, 2, 16)


def test_root_module_itself_is_a_stage():
    found = discover(nn.ConvTranspose1d(2, 2, 8, stride=4, padding=2), torch.randn(1, 2, 8))
    assert _summary(found.stages) == [("<root>", CT1, 4.0, (1, 2, 8), (1, 2, 32))]


@pytest.mark.parametrize("device", DEVICES)
def test_tap_keeps_device_and_matches_forward(device):
    model, x, _ = _build("transposed")
    model, x = model.to(device), x.to(device)
    found = discover(model, x)
    out, taps = tap(model, x, found.stages)
    assert out.device.type == device and all(
        t.device.type == device for p in taps.values() for t in p
    )
    with torch.no_grad():
        torch.testing.assert_close(out, model(x))
        torch.testing.assert_close(taps["decoder.3"][1], out)


def test_failure_names_module_in_one_line_and_removes_hooks():
    torch.manual_seed(0)
    model = mf.Failing()
    before = _hooks(model)
    x = torch.randn(1, 4, 8)
    for run in (discover, lambda m, x: tap(m, x, [])):
        with pytest.raises(StageError) as info:
            run(model, x)
        assert isinstance(info.value, UsageError)
        assert (
            str(info.value) == "model failed in 'body.2' (_Broken): RuntimeError: boom: bad state"
        )
        _assert_clean(model, before)


def test_failure_inside_a_torch_layer():
    model, _, _ = _build("transposed")
    before = _hooks(model)
    with pytest.raises(
        StageError, match=r"^model failed in 'decoder\.0' \(Conv1d\): RuntimeError: "
    ):
        discover(model, torch.randn(1, 3, 8))  # wrong channel count
    _assert_clean(model, before)
    codec, _, _ = _build("decode_method")
    with pytest.raises(StageError) as info:
        discover(codec, torch.randn(1, 5, 8), method="decode")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("model failed in 'decoder' (ConvTranspose1d): RuntimeError")


def test_bad_method_and_missing_stage():
    model, x, _ = _build("transposed")
    with pytest.raises(UsageError, match="no method 'synthesize'"):
        discover(model, x, method="synthesize")
    ghost = Stage("ghost", "shape-growth", 2.0, (1, 4, 8), (1, 4, 16), None, None, True)
    with pytest.raises(StageError, match="ghost"):
        tap(model, x, [ghost])
    _assert_clean(model, _hooks(model))


# ---- real torchaudio models, built from code (no weights) --------------------------------


def test_conv_tasnet_base_has_one_transposed_stage():
    torchaudio = pytest.importorskip("torchaudio")
    torch.manual_seed(0)
    model = torchaudio.models.conv_tasnet_base().eval()
    found = discover(model, torch.randn(1, 1, 8000))  # Conv-TasNet wants (batch, 1, frames)
    # The decoder sees (batch * sources, 512, frames); stride 8, padding 8: 1001 frames -> 8000.
    assert _summary(found.stages) == [("decoder", CT1, 8.0, (2, 512, 1001), (2, 1, 8000))]
    assert found.stages[0].length_ratio == pytest.approx(8000 / 1001)
    assert found.other_axis == [] and found.output_shape == (1, 2, 8000)
    x = torch.randn(1, 1, 8000)
    _, taps = tap(model, x, found.stages)
    torch.testing.assert_close(found.stages[0].replay(taps["decoder"][0]), taps["decoder"][1])


def test_hdemucs_low_time_and_frequency_branches():
    torchaudio = pytest.importorskip("torchaudio")
    torch.manual_seed(0)
    model = torchaudio.models.hdemucs_low(sources=["bass", "drums", "other", "vocals"]).eval()
    found = discover(model, torch.randn(1, 2, 44100))
    assert [(s.name, s.kind, s.factor) for s in found.stages] == [
        # The deepest frequency-branch layer has collapsed the frequency axis and convolves
        # along spectrogram frames (stride 2): a real time-axis (frame-rate) upsampler.
        ("freq_decoder.0.conv_tr", CT1, 2.0),
        ("time_decoder.0.conv_tr", CT1, 4.0),
        ("time_decoder.1.conv_tr", CT1, 4.0),
        ("time_decoder.2.conv_tr", CT1, 4.0),
        ("time_decoder.3.conv_tr", CT1, 4.0),
        # frames -> samples of the frequency branch's output, (B*S*C, 513, frames) complex.
        ("<root>:istft", "istft", 256.0),
    ]
    assert found.stages[-1].in_shape == (8, 513, 177) and found.stages[-1].out_shape == (8, 45056)
    assert found.stages[-2].out_shape == (1, 8, 44104)
    assert [(s.name, s.kind, s.factor) for s in found.other_axis] == [
        (f"freq_decoder.{i}.conv_tr", CT2, 4.0) for i in range(1, 5)
    ]
    assert found.other_axis[-1].out_shape == (1, 16, 516, 173)  # frequency grows, frames kept
    assert found.output_index == "output" and found.output_shape == (1, 4, 2, 44100)


def test_wavernn_upsample_network_stretches_by_repeat_interleave():
    pytest.importorskip("torchaudio")
    from torchaudio.models.wavernn import UpsampleNetwork

    torch.manual_seed(0)
    model = UpsampleNetwork(
        upsample_scales=[5, 5, 11], n_res_block=2, n_freq=80, n_hidden=32, n_output=32
    ).eval()
    found = discover(model, torch.randn(1, 80, 12))  # (B, n_freq, frames), kernel_size 5
    # Stretch2d does repeat_interleave(freq_scale=1, -2) (a no-op) then (time_scale, -1); the
    # Conv2d(1, 1, (1, 2s+1)) after each stretch keeps the length. The resnet branch (output[1])
    # is stretched by the total scale in one go.
    ri = "repeat_interleave"
    assert _summary(found.stages) == [
        ("resnet_stretch:" + ri, ri, 275.0, (1, 1, 32, 8), (1, 1, 32, 2200)),
        ("upsample_layers.0:" + ri, ri, 5.0, (1, 1, 80, 12), (1, 1, 80, 60)),
        ("upsample_layers.2:" + ri, ri, 5.0, (1, 1, 80, 60), (1, 1, 80, 300)),
        ("upsample_layers.4:" + ri, ri, 11.0, (1, 1, 80, 300), (1, 1, 80, 3300)),
    ]
    assert found.output_index == "output[0]" and found.output_shape == (1, 80, 2200)
    assert found.other_axis == []
    out, taps = tap(model, torch.randn(2, 80, 12), found.stages)
    assert out.shape == (2, 80, 2200)
    for s in found.stages:
        torch.testing.assert_close(s.replay(taps[s.name][0]), taps[s.name][1])


def test_a_stride_1_functional_transposed_conv_is_no_stage_eager_or_exported():
    class Widen(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(1, 1, 5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.conv_transpose1d(x, self.w)  # stride 1: only longer by the kernel

    model, x = Widen().eval(), torch.randn(1, 1, 64)
    exported = torch.export.export(model, (x,)).module()
    assert discover(model, x).stages == [] and discover(exported, x).stages == []
