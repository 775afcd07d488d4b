"""``upsampcheck repair``: the minimum-norm tie of the phase sums against the formula and
``numpy.linalg.lstsq``, the repaired checkpoint written in its own layout (weight norm in
both forms), small models trained here losing their DC and silence lines, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from upsampcheck.repair import ties


def phase_matrix_np(length: int, stride: int) -> np.ndarray:
    """``A``: row ``r`` sums the taps ``k ≡ r (mod s)``, written out independently."""
    a = np.zeros((stride, length))
    for k in range(length):
        a[k % stride, k] = 1.0
    return a


def test_tie_is_the_least_squares_minimum_norm_correction_on_partial_overlap():
    """K = 5, s = 4 (n_0 = 2, the others 1): Δ equals lstsq's minimum-norm solution of
    A·Δ = mean(P) − P for every (in, out) pair, the sums end equal and their total is kept."""
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 2, 5, generator=gen, dtype=torch.float64)
    tied = ties.tie_transposed(weight, 4)
    a = phase_matrix_np(5, 4)
    for i in range(3):
        for o in range(2):
            w = weight[i, o].numpy()
            p = a @ w
            delta, *_ = np.linalg.lstsq(a, p.mean() - p, rcond=None)
            np.testing.assert_allclose(tied[i, o].numpy() - w, delta, rtol=0, atol=1e-14)
            after = a @ tied[i, o].numpy()
            np.testing.assert_allclose(after, np.full(4, p.mean()), rtol=0, atol=1e-14)
            assert abs(after.sum() - p.sum()) < 1e-13


@pytest.mark.parametrize(("length", "stride"), [(5, 4), (8, 4), (7, 3), (16, 8), (9, 2)])
def test_tied_kernel_has_no_line_for_any_pair_and_m(length, stride):
    """After the tie, W_m = Σ_r P_r e^{−2πi m r/s} is zero for 0 < m < s, for every pair, to
    below 1e-12 of the kernel's phase-sum scale (float64)."""
    gen = torch.Generator().manual_seed(length * 10 + stride)
    weight = torch.randn(4, 3, length, generator=gen, dtype=torch.float64)
    before = ties.phase_offsets(ties.phase_sums(weight, stride))
    after = ties.phase_offsets(ties.phase_sums(ties.tie_transposed(weight, stride), stride))
    scale = ties.phase_sums(weight, stride).abs().sum(-1, keepdim=True)
    assert (before[..., 1:].abs() / scale).max() > 1e-3
    assert (after[..., 1:].abs() / scale).max() < 1e-12
    torch.testing.assert_close(after[..., 0], before[..., 0], rtol=0, atol=1e-13)  # DC gain kept


def test_a_tied_kernel_is_left_unchanged_bit_for_bit():
    """Kernels whose phase sums are already equal come back identical, float32 and float64
    (the mean of equal sums would round; it is never taken for them)."""
    for dtype in (torch.float32, torch.float64):
        torch.manual_seed(1)
        x, y = torch.randn(2, 2, 3, 1, dtype=dtype)
        weight = torch.cat([x, y, x, y, y, x, y, x], -1)  # s = 4: every P_r = x + y exactly
        assert (ties.phase_sums(weight, 4) == ties.phase_sums(weight, 4)[..., :1]).all()
        tied = ties.tie_transposed(weight, 4)
        assert tied.dtype == dtype
        assert tied.numpy().tobytes() == weight.numpy().tobytes()
    ones = torch.ones(1, 1, 8)
    assert torch.equal(ties.tie_transposed(ones, 4), ones)


def test_a_phase_without_taps_is_refused():
    """K = 3 < s = 4: phase 3 holds no tap, its sum is 0 for good."""
    with pytest.raises(ties.Untieable, match="phase 3 of stride 4 holds no tap"):
        ties.tie_transposed(torch.randn(1, 1, 3), 4)


def test_subpixel_tie_equalises_every_phase_dc_gain_and_bias():
    """Subpixel (Conv1d(C_in, C·s, K) + shuffle): each sub-kernel's DC gain and each phase's
    bias end equal to their mean over phases; the change is the minimum-norm one."""
    torch.manual_seed(2)
    s, c, c_in, k = 3, 2, 2, 4
    weight = torch.randn(c * s, c_in, k, dtype=torch.float64)
    bias = torch.randn(c * s, dtype=torch.float64)
    tied, tied_bias = ties.tie_subpixel(weight, bias, s)
    sums = ties.subpixel_sums(tied, s)
    before = ties.subpixel_sums(weight, s)
    torch.testing.assert_close(sums, before.mean(-1, keepdim=True).expand_as(sums), rtol=0,
                               atol=1e-14)  # fmt: skip
    torch.testing.assert_close(tied_bias.view(c, s), bias.view(c, s).mean(-1, keepdim=True)
                               .expand(c, s), rtol=0, atol=1e-14)  # fmt: skip
    delta = (tied - weight).numpy()
    for ch in range(c * s):
        for i in range(c_in):
            target = before[ch // s, i].mean() - before[ch // s, i, ch % s]
            solution, *_ = np.linalg.lstsq(np.ones((1, k)), [float(target)], rcond=None)
            np.testing.assert_allclose(delta[ch, i], solution, rtol=0, atol=1e-14)


# -- small models trained here -----------------------------------------------------------

ARCH = '''
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import weight_norm as old_weight_norm
from torch.nn.utils.parametrizations import weight_norm

from upsampcheck.subjects.layers import Interpolate1d, Subpixel1d


class Offset(nn.Module):
    """A bias and a LeakyReLU before a x4 transposed conv (K = 5: partial overlap): the
    offset they make is turned into lines at 4 and 8 kHz by the stage's phase sums."""

    def __init__(self):
        super().__init__()
        self.pre = nn.Conv1d(1, 4, 3, padding=1)
        self.up = nn.ConvTranspose1d(4, 4, 5, 4)
        self.post = nn.Conv1d(4, 1, 3, padding=1)

    def forward(self, x):
        return self.post(self.up(F.leaky_relu(self.pre(x), 0.1)))


class Rectified(nn.Module):
    """A x4 transposed conv, then a ReLU: it mixes the multitone and its images onto the
    grid after the last upsampler."""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose1d(1, 4, 5, 4, bias=False)
        self.post = nn.Conv1d(4, 1, 3, padding=1)

    def forward(self, x):
        return self.post(torch.relu(self.up(x)))


class Shuffled(nn.Module):
    """A bias before a x4 subpixel conv with untied biases, and a nearest x2 after it."""

    def __init__(self):
        super().__init__()
        self.pre = nn.Conv1d(1, 2, 1)
        self.up = Subpixel1d(2, 4, 3)
        self.near = Interpolate1d(2, 2, 0, "nearest")

    def forward(self, x):
        return self.near(self.up(self.pre(x))).sum(1, keepdim=True)


class HifiWN(nn.Module):
    """HiFi-GAN's shape at small width, weight norm on every conv (old-style on the
    upsamplers with ``old=True``, else the parametrizations): kernel-7 input conv from 8
    bands, two x4 stages (LeakyReLU, ConvTranspose1d K = 8, padding 2, a residual conv),
    a kernel-7 output conv and tanh."""

    def __init__(self, old=True):
        super().__init__()
        up_norm = old_weight_norm if old else weight_norm
        self.pre = weight_norm(nn.Conv1d(8, 16, 7, padding=3))
        self.ups = nn.ModuleList(
            [up_norm(nn.ConvTranspose1d(16, 8, 8, 4, padding=2)),
             up_norm(nn.ConvTranspose1d(8, 4, 8, 4, padding=2))]
        )
        self.res = nn.ModuleList([weight_norm(nn.Conv1d(c, c, 3, padding=1)) for c in (8, 4)])
        self.post = weight_norm(nn.Conv1d(4, 1, 7, padding=3))

    def forward(self, x):
        x = self.pre(x)
        for up, res in zip(self.ups, self.res):
            x = up(F.leaky_relu(x, 0.1))
            x = x + res(F.leaky_relu(x, 0.1))
        return torch.tanh(self.post(F.leaky_relu(x, 0.1)))


def Offset64():
    return Offset().double()


def Rectified64():
    return Rectified().double()
'''
FS = 16000
MODEL = ["--sample-rate", str(FS), "--input-shape", "1,4096"]


def speech_batches(steps: int, size: int = 16, frames: int = 64):
    """(input at 4 kHz, target at 16 kHz) crops of a speech-like signal, float64."""
    from scipy.signal import resample_poly
    from speechlike import speech

    audio = speech(FS, 4.0, seed=3) * 5
    low = resample_poly(audio, 1, 4)
    rng = np.random.default_rng(4)
    for _ in range(steps):
        starts = rng.integers(8, len(low) - frames - 8, size)
        x = np.stack([low[s : s + frames] for s in starts])[:, None]
        y = np.stack([audio[4 * s : 4 * s + 4 * frames] for s in starts])[:, None]
        yield torch.from_numpy(x), torch.from_numpy(y)


def train(model: torch.nn.Module, steps: int = 300) -> torch.nn.Module:
    """A few hundred Adam steps to upsample the speech-like signal by 4 (output cropped to
    the target, the edges left out of the loss)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: more threads only wait on each other
    try:
        for x, y in speech_batches(steps):
            out = model(x)[..., : y.shape[-1]]
            loss = (out - y)[..., 16:-16].pow(2).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@pytest.fixture(scope="module")
def arch(tmp_path_factory):
    """The architectures as an importable module ``repairfix`` (for ``--arch``)."""
    import sys

    root = tmp_path_factory.mktemp("repair")
    (root / "repairfix.py").write_text(ARCH)
    sys.path.insert(0, str(root))
    import repairfix

    yield repairfix
    sys.path.remove(str(root))
    sys.modules.pop("repairfix", None)


@pytest.fixture(scope="module")
def trained(arch):
    """The two float64 models trained here, under the seeds that --arch builds them with."""
    torch.manual_seed(0)
    offset = train(arch.Offset64())
    torch.manual_seed(0)
    rectified = train(arch.Rectified64())
    return {"offset": offset, "rectified": rectified}


@pytest.fixture(scope="module")
def offset_repair(trained):
    from upsampcheck import repair_model

    return repair_model(trained["offset"], sample_rate=FS, input_shape=(1, 4096))


def independent_drop(rows: list[dict], probes=("dc", "silence")) -> list[float]:
    """Drops of the DC/silence lines of a table, a line gone counted at the floor."""
    gone = -130.0
    return [
        r["before_db"] - (gone if r["after_db"] is None else r["after_db"])
        for r in rows
        if r["probe"] in probes and r["before_db"] is not None
    ]


def test_trained_transposed_stage_loses_its_dc_and_silence_lines(offset_repair, capsys):
    """The trained x4 stage's DC and silence lines (stage and output) drop by 60 dB or more
    in float64, the pairs' W_m of the repaired kernel vanish, and the model passes."""
    result = offset_repair
    (stage,) = result.stages
    assert stage["name"] == "up" and stage["changed"]
    stage_rows = [r for r in stage["lines"] if r["probe"] in ("dc", "silence")]
    output_rows = [r for r in result.output if r["origin"] == "up" and r["probe"] != "noise"]
    with capsys.disabled():
        print("\nrepair of the trained x4 stage:", [(r["probe"], r["freq_hz"], r["before_db"],
              r["after_db"]) for r in stage_rows + output_rows])  # fmt: skip
    assert max(r["before_db"] for r in stage_rows) > -20
    assert max(r["before_db"] for r in output_rows) > -40
    assert min(independent_drop(stage_rows + output_rows)) >= 60
    assert all(r["after_db"] is None or r["after_db"] < -120 for r in stage_rows + output_rows)
    weight = result.module.up.weight.detach()
    sums = ties.phase_sums(weight, 4)
    offsets = ties.phase_offsets(sums)[..., 1:].abs() / sums.abs().sum(-1, keepdim=True)
    assert offsets.max() < 1e-12
    assert stage["phase_offset_after"] < 1e-12 < stage["phase_offset_before"]
    assert result.before.verdict == "fail" and result.verdict == "pass"


@pytest.fixture(scope="module")
def rectified_repair(trained):
    from upsampcheck import repair_model

    return repair_model(trained["rectified"], sample_rate=FS, input_shape=(1, 4096))


def test_lines_a_later_nonlinearity_makes_are_listed_beyond_reach(rectified_repair):
    """After a ReLU that follows the last upsampler, the multitone's lines stay: they are
    listed as beyond the remedy's reach, while the stage's own DC lines are gone."""
    result = rectified_repair
    (stage,) = result.stages
    dc = [r for r in stage["lines"] if r["probe"] == "dc"]
    assert dc and min(independent_drop(dc)) >= 60
    beyond = [b for b in result.beyond_reach if b["where"] == "output"]
    assert beyond, result.output
    assert all(b["probe"] == "noise" and "nonlinearity" in b["reason"] for b in beyond)
    assert all("after the last upsampler" in b["reason"] for b in beyond)


def stage_power_by_driving(layer: torch.nn.Module, stride: int, fractions: np.ndarray):
    """``Σ_{in,out} |H(f)|²`` of a float64 transposed-conv layer measured by driving each input
    channel with ``e^{iωt}`` (real and imaginary parts through the layer) and projecting its
    steady-state output on ``e^{iωn/s}`` over whole periods of ``s`` (the images cancel)."""
    c_in = layer.in_channels
    frames, omega = 64, np.pi * fractions
    t = np.arange(frames)
    n = np.arange(16 * stride, 48 * stride)  # the interior, whole periods of s
    basis = np.exp(-1j * np.outer(omega, n) / stride)
    total = np.zeros(len(fractions))

    def run(part: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            weight = layer.weight.detach().double()
            return torch.nn.functional.conv_transpose1d(torch.from_numpy(part), weight, None,
                                                        stride).numpy()  # fmt: skip

    for c in range(c_in):
        x = np.zeros((len(fractions), c_in, frames), dtype=complex)
        x[:, c] = np.exp(1j * np.outer(omega, t))
        y = run(x.real.copy()) + 1j * run(x.imag.copy())
        h = (y[:, :, n] * basis[:, None, :]).mean(-1)
        total += (np.abs(h) ** 2).sum(1)
    return total


def test_response_change_and_snr_match_an_independent_computation(offset_repair, trained):
    """The reported response change (max and RMS) and output SNR agree within 0.01 dB with the
    layer driven by complex exponentials and with the two models run on the same multitone."""
    from upsampcheck.repair.compare import band_fractions

    result = offset_repair
    (stage,) = result.stages
    f = band_fractions()
    before = stage_power_by_driving(trained["offset"].up, 4, f)
    after = stage_power_by_driving(result.module.up, 4, f)
    change = 10 * np.log10(after / before)
    assert abs(np.abs(change).max() - stage["kernel_response_change_max_db"]) < 0.01
    assert abs(np.sqrt(np.mean(change**2)) - stage["kernel_response_change_rms_db"]) < 0.01
    assert stage["kernel_response_change_max_db"] > 0.05  # a change there is to measure
    x = result.probe[None].double()
    with torch.no_grad():
        y, y2 = trained["offset"](x).numpy(), result.module(x).numpy()
    snr = 10 * np.log10((y**2).sum() / ((y2 - y) ** 2).sum())
    assert abs(snr - result.snr_db) < 0.01
    assert 0 < result.snr_db < 80


def test_subpixel_stage_is_tied_and_the_interpolation_stage_refused(arch):
    """A subpixel stage's untied biases and sub-kernel gains are tied (its DC and silence lines
    gone); naming the nearest-neighbour stage is refused with the reason."""
    from upsampcheck import UsageError, repair_model

    torch.manual_seed(0)
    model = arch.Shuffled().double()
    result = repair_model(model, sample_rate=FS, input_shape=(1, 2048))
    assert [s["name"] for s in result.stages] == ["up"]
    rows = [r for r in result.stages[0]["lines"] if r["probe"] in ("dc", "silence")]
    assert rows and min(independent_drop(rows)) >= 60
    bias = result.module.up.conv.bias.detach().view(2, 4)
    assert (bias - bias[:, :1]).abs().max() < 1e-15
    with pytest.raises(UsageError, match="interpolation stage"):
        repair_model(model, stages=["near:interpolate"], sample_rate=FS, input_shape=(1, 2048))


# -- the command: the checkpoint's own layout, and the refusals ---------------------------

HIFI = ["--arch", "repairfix:HifiWN", "--input-shape", "8,64", "--sample-rate", str(FS)]


def test_weight_norm_checkpoint_round_trip_and_a_second_check_confirms(arch, tmp_path, cli):
    """A HiFi-GAN-shaped generator with old-style weight norm on its upsamplers, saved under
    ``generator`` beside other entries: the repaired file has the same keys, only the
    upsamplers' ``weight_g``/``weight_v`` changed, the rest untouched; it loads into the same
    --arch with no flag, its effective kernels are tied, and ``upsampcheck model`` on it finds
    no tonal line on the repaired stages."""
    import json
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates the old weight_norm
        torch.manual_seed(0)
        model = arch.HifiWN(old=True)
    source = tmp_path / "g.pt"
    torch.save({"generator": model.state_dict(), "steps": 7, "optim": {"lr": 1e-3}}, source)
    fixed = tmp_path / "g_tied.pt"
    run = cli("repair", str(source), *HIFI, "--write", str(fixed), "--out", str(tmp_path / "r"))
    assert run.code in (0, 1), run.err
    data = json.loads((tmp_path / "r" / "repair.json").read_text())
    assert data["repaired"] == ["ups.0", "ups.1"] and data["verdict_before"] == "fail"
    assert (tmp_path / "r" / "repair.html").read_text().count("<audio") >= 6
    old, new = torch.load(source), torch.load(fixed)
    assert list(new) == list(old) and new["steps"] == 7 and new["optim"] == {"lr": 1e-3}
    assert list(new["generator"]) == list(old["generator"])
    changed = [k for k in old["generator"] if not torch.equal(old["generator"][k],
                                                               new["generator"][k])]  # fmt: skip
    assert changed == ["ups.0.weight_g", "ups.0.weight_v", "ups.1.weight_g", "ups.1.weight_v"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reloaded = arch.HifiWN(old=True)
    reloaded.load_state_dict(new["generator"])
    for up in reloaded.ups:
        weight = torch._weight_norm(up.weight_v, up.weight_g, 0).detach()
        sums = ties.phase_sums(weight, 4)
        assert (ties.phase_offsets(sums)[..., 1:].abs().max() / sums.abs().sum(-1).max()) < 1e-5
    check = cli("model", str(fixed), *HIFI, "--format", "json", "--no-plots",
                "--out", str(tmp_path / "m"))  # fmt: skip
    report = check.json()
    assert check.code == data["exit_code"], check.err
    tonal = [f for f in report["findings"] if f["check"] == "tonal" and f["stage"] != "output"]
    assert tonal and all(f["severity"] == "pass" for f in tonal)
    for stage in report["stages"]:
        assert not [ln for ln in stage["tonal"]["lines"] if ln["probe"] in ("dc", "silence")]


def test_parametrized_weight_norm_is_written_back_through_its_own_parameters(arch):
    """With ``parametrizations.weight_norm`` the corrected kernel goes to ``original1`` (v) and
    its norm to ``original0`` (g): the effective weight is the tied one to float rounding."""
    from upsampcheck.repair.apply import find_target, tie_target

    torch.manual_seed(0)
    model = arch.HifiWN(old=False).double()
    for name in ("ups.0", "ups.1"):
        record = tie_target(find_target(model, name, "transposed"))
        effective = model.get_submodule(name).weight.detach()
        torch.testing.assert_close(effective, record.after, rtol=0, atol=1e-14)
        sums = ties.phase_sums(effective, 4)
        assert ties.phase_offsets(sums)[..., 1:].abs().max() < 1e-12 * sums.abs().sum(-1).max()


def test_refusals_are_one_line_exit_2_before_any_work(arch, tmp_path, cli):
    """--write over the input (by name or a hard link), over an existing file or a link,
    neither --write nor --dry-run, and a named interpolation stage: exit 2, one line."""
    import os

    torch.manual_seed(0)
    source = tmp_path / "s.pt"
    torch.save(arch.Shuffled().double().state_dict(), source)
    os.link(source, tmp_path / "hard.pt")
    (tmp_path / "taken.pt").write_bytes(b"x")
    (tmp_path / "link.pt").symlink_to(tmp_path / "nowhere.pt")
    args = ["repair", str(source), "--arch", "repairfix:Shuffled", *MODEL[:2],
            "--input-shape", "1,2048", "--out", str(tmp_path / "r")]  # fmt: skip
    cases = {
        "is the input checkpoint": ["--write", str(source)],
        "is the input checkpoint ": ["--write", str(tmp_path / "hard.pt")],
        "exists; repair never overwrites": ["--write", str(tmp_path / "taken.pt")],
        "is a symbolic link": ["--write", str(tmp_path / "link.pt")],
        "or --dry-run": [],
        "interpolation stage": ["--dry-run", "--stage", "near:interpolate"],
    }
    for words, extra in cases.items():
        run = cli(*args, *extra)
        assert run.code == 2, (words, run.err)
        assert words.strip() in run.err and len(run.err.strip().splitlines()) == 1, run.err
    assert (tmp_path / "taken.pt").read_bytes() == b"x"
    assert not (tmp_path / "r").exists()
    dry = cli(*args, "--dry-run", "--no-plots")
    assert dry.code == 0, dry.err
    assert (tmp_path / "r" / "repair.json").exists() and "(dry run)" in dry.out
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".pt") == [
        "hard.pt", "link.pt", "s.pt", "taken.pt"]  # fmt: skip


def test_safetensors_checkpoint_is_written_back_as_safetensors(trained, tmp_path, cli):
    """A trained model's weights under a ``model.`` prefix in a .safetensors file: the repaired
    file is safetensors again, same keys and dtypes, only ``model.up.weight`` changed."""
    from safetensors.torch import load_file, save_file

    state = {f"model.{k}": v.contiguous() for k, v in trained["offset"].state_dict().items()}
    save_file(state, tmp_path / "w.safetensors")
    fixed = tmp_path / "w_tied.safetensors"
    run = cli("repair", str(tmp_path / "w.safetensors"), "--arch", "repairfix:Offset64", *MODEL,
              "--write", str(fixed), "--no-plots", "--out", str(tmp_path / "r"))  # fmt: skip
    assert run.code == 0, run.err
    new = load_file(fixed)
    assert sorted(new) == sorted(state) and all(new[k].dtype == state[k].dtype for k in new)
    assert [k for k in state if not torch.equal(state[k], new[k])] == ["model.up.weight"]


def test_measured_response_change_of_a_one_input_stage_is_the_kernel_formula(
    rectified_repair, trained
):
    """With one input channel the stage's measured gain change (the check's own bins, on the
    model's signal) is Σ_o |W_o(f)|² after over before at every driven bin, and its max and
    RMS are those of the layer driven by complex exponentials at those bins."""
    from upsampcheck.repair.compare import measured_change_curve

    result = rectified_repair
    (stage,) = result.stages
    fractions, change = measured_change_curve(
        result.before.stages[0].measurement, result.after.stages[0].measurement
    )
    before = stage_power_by_driving(trained["rectified"].up, 4, fractions)
    after = stage_power_by_driving(result.module.up, 4, fractions)
    driven = 10 * np.log10(after / before)
    assert len(fractions) > 100 and np.abs(change - driven).max() < 1e-6
    assert abs(np.abs(driven).max() - stage["response_change_max_db"]) < 0.01
    assert abs(np.sqrt(np.mean(driven**2)) - stage["response_change_rms_db"]) < 0.01


def test_stages_the_tie_cannot_hold_are_refused_with_the_reason():
    """A stride-4 kernel of 3 taps (phase 3 has none) and a weight the old spectral norm
    recomputes at every call: named, refused (UsageError); by default, listed as refused."""
    from torch import nn

    from upsampcheck import UsageError, repair_model

    torch.manual_seed(0)
    short = nn.Sequential(nn.ConvTranspose1d(1, 1, 3, 4, bias=False)).double()
    with pytest.raises(UsageError, match="phase 3 of stride 4 holds no tap"):
        repair_model(short, stages=["0"], sample_rate=FS, input_shape=(1, 1024))
    spectral = nn.Sequential(nn.utils.spectral_norm(nn.ConvTranspose1d(1, 1, 5, 4)))
    result = repair_model(spectral, sample_rate=FS, input_shape=(1, 1024))
    assert result.stages == [] and [r["stage"] for r in result.refused] == ["0"]
    assert "SpectralNorm" in result.refused[0]["reason"]


def test_a_model_that_passes_is_left_as_it_is():
    """Nothing fails (a tied x4 kernel): nothing is repaired, the report says so, and the
    model after is the model before (one check, identical outputs)."""
    from torch import nn

    from upsampcheck import repair_model

    tied = nn.Sequential(nn.ConvTranspose1d(1, 1, 8, 4, bias=False)).double()
    with torch.no_grad():
        tied[0].weight.fill_(0.25)
    result = repair_model(tied, sample_rate=FS, input_shape=(1, 1024))
    assert result.stages == [] and result.after is result.before and result.verdict == "pass"
    assert "no stage fails: nothing to repair" in result.notes
    assert result.snr_db == float("inf")
