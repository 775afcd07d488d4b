"""Checkpoints as training runs save them: old and new weight norm, EMA weights beside the raw
ones, hyper-parameters and metrics of plain types beside the tensors, a trusted pickle whose
class lives in the working folder. Each file is built here as real projects save it."""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations
from torch.nn.utils import weight_norm as old_weight_norm

from upsampcheck.errors import UsageError
from upsampcheck.subjects.loading import load_model

VOCODERS = '''
from torch import nn
from torch.nn.utils import parametrizations, weight_norm


def OldNorm():
    """HiFi-GAN style, the old weight-norm API: weight_g / weight_v."""
    return nn.Sequential(
        weight_norm(nn.Conv1d(1, 4, 3)), weight_norm(nn.ConvTranspose1d(4, 1, 8, 4))
    )


def NewNorm():
    """The same layers with the parametrization API."""
    return nn.Sequential(
        parametrizations.weight_norm(nn.Conv1d(1, 4, 3)),
        parametrizations.weight_norm(nn.ConvTranspose1d(4, 1, 8, 4)),
    )


def Plain():
    return nn.Sequential(nn.Conv1d(1, 4, 3), nn.ConvTranspose1d(4, 1, 8, 4))


class Pickled(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose1d(1, 1, 8, 4)

    def forward(self, x):
        return self.up(x)
'''

X = torch.randn(1, 1, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "vocoders.py").write_text(VOCODERS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("vocoders", None)
    yield tmp_path
    sys.modules.pop("vocoders", None)


def seeded(build, seed: int = 5) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().eval()


def output(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(X)


def old_norm() -> nn.Module:
    return nn.Sequential(
        old_weight_norm(nn.Conv1d(1, 4, 3)), old_weight_norm(nn.ConvTranspose1d(4, 1, 8, 4))
    )


def new_norm() -> nn.Module:
    return nn.Sequential(
        parametrizations.weight_norm(nn.Conv1d(1, 4, 3)),
        parametrizations.weight_norm(nn.ConvTranspose1d(4, 1, 8, 4)),
    )


def plain() -> nn.Module:
    return nn.Sequential(nn.Conv1d(1, 4, 3), nn.ConvTranspose1d(4, 1, 8, 4))


@pytest.mark.parametrize(
    ("saved", "arch"), [(old_norm, "vocoders:NewNorm"), (new_norm, "vocoders:OldNorm")]
)
def test_weight_norm_checkpoints_load_into_the_other_layout_with_equal_outputs(
    workdir, saved, arch
):
    model = seeded(saved)
    torch.save({"generator": model.state_dict()}, workdir / "g_00100000")
    loaded = load_model(workdir / "g_00100000", arch)
    assert torch.allclose(output(loaded.module), output(model), rtol=0, atol=1e-6)
    assert any("converted 2 weight-norm layer(s)" in note for note in loaded.notes)


def test_a_round_trip_old_new_old_keeps_the_outputs(workdir):
    model = seeded(old_norm)
    torch.save(model.state_dict(), workdir / "old.pt")
    new = load_model(workdir / "old.pt", "vocoders:NewNorm").module
    torch.save(new.state_dict(), workdir / "new.pt")
    back = load_model(workdir / "new.pt", "vocoders:OldNorm").module
    assert torch.allclose(output(back), output(model), rtol=0, atol=1e-6)


def ema_of(model: nn.Module, scale: float = 0.5) -> dict:
    return {k: v * scale for k, v in model.state_dict().items()}


@pytest.mark.parametrize("layout", ["model+ema", "state_dict_ema", "prefixes"])
def test_raw_weights_are_the_default_and_the_note_names_the_ema(workdir, layout):
    model = seeded(plain)
    raw, ema = model.state_dict(), ema_of(model)
    if layout == "model+ema":
        doc, pick = {"model": raw, "ema": ema}, "ema"
    elif layout == "state_dict_ema":
        doc, pick = {"state_dict": raw, "state_dict_ema": ema}, "state_dict_ema"
    else:
        doc = {"state_dict": {**{f"model.{k}": v for k, v in raw.items()},
                              **{f"model_ema.{k}": v for k, v in ema.items()}}}  # fmt: skip
        pick = "model_ema"
    torch.save(doc, workdir / "ck.pt")
    default = load_model(workdir / "ck.pt", "vocoders:Plain")
    assert torch.equal(output(default.module), output(model))
    assert any("averaged weights" in n and pick in n for n in default.notes), default.notes
    chosen = load_model(workdir / "ck.pt", "vocoders:Plain", weights=pick)
    ema_model = plain().eval()
    ema_model.load_state_dict(ema)
    assert torch.equal(output(chosen.module), output(ema_model))


def test_a_checkpoint_with_only_ema_weights_loads_them(workdir):
    model = seeded(plain)
    torch.save({"model_ema": model.state_dict(), "step": 10}, workdir / "ck.pt")
    loaded = load_model(workdir / "ck.pt", "vocoders:Plain")
    assert torch.equal(output(loaded.module), output(model))


def test_two_prefixes_that_both_fit_need_weights_and_the_error_names_both(workdir):
    model = seeded(plain)
    state = {f"{p}.{k}": v for p in ("gen", "gen_ema") for k, v in model.state_dict().items()}
    torch.save(state, workdir / "gan.pt")
    with pytest.raises(UsageError, match=r"gen\., gen_ema\..*--weights PREFIX"):
        load_model(workdir / "gan.pt", "vocoders:Plain")
    loaded = load_model(workdir / "gan.pt", "vocoders:Plain", weights="gen_ema")
    assert torch.equal(output(loaded.module), output(model))


def test_weights_naming_nothing_lists_what_there_is(workdir):
    torch.save({"model": seeded(plain).state_dict()}, workdir / "ck.pt")
    with pytest.raises(UsageError, match=r"--weights 'ema' names no part.*'model'"):
        load_model(workdir / "ck.pt", "vocoders:Plain", weights="ema")


def test_lightning_hyper_parameters_and_numpy_metrics_load_weights_only(workdir):
    model = seeded(plain)
    torch.save(
        {
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "hyper_parameters": {
                "data_dir": pathlib.Path("/data/ljspeech"),
                "args": argparse.Namespace(lr=2e-4, batch=16),
            },
            "best_loss": np.float64(0.125),
            "metric_dtype": np.dtype("float32"),
            "global_step": 1200,
            "pytorch-lightning_version": "2.4.0",
        },  # fmt: skip
        workdir / "last.ckpt",
    )
    loaded = load_model(workdir / "last.ckpt", "vocoders:Plain")
    assert loaded.source == "lightning"
    assert torch.equal(output(loaded.module), output(model))


def test_a_trusted_pickle_of_a_class_in_the_working_folder_loads(workdir):
    code = (
        "import torch, vocoders; torch.manual_seed(0); torch.save(vocoders.Pickled(), 'whole.pt')"
    )
    subprocess.run([sys.executable, "-c", code], cwd=workdir, check=True)
    sys.path.remove(str(workdir))  # as a user's shell: only the working folder
    sys.modules.pop("vocoders", None)
    loaded = load_model(workdir / "whole.pt", trust_checkpoint=True)
    assert loaded.source == "pickled_module"
    assert type(loaded.module).__name__ == "Pickled"
    with pytest.raises(UsageError, match="full pickle"):
        load_model(workdir / "whole.pt")  # untrusted: refused, never unpickled
