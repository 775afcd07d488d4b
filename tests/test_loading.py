"""Checkpoint loading and the trust policy (docs/method.md): every format, every refusal."""

from __future__ import annotations

import pathlib
import pickle
import random
import sys
import warnings
import zipfile

import pytest
import torch
from torch import nn

from upsampcheck.errors import UsageError
from upsampcheck.subjects.loading import LoadedModel, build_arch, load_model

MYMODELS = """
from torch import nn


def Net(channels=4):
    return nn.Sequential(nn.Conv1d(1, channels, 3), nn.ConvTranspose1d(channels, 1, 8, 4))


def Wide():
    return nn.Sequential(
        nn.Conv1d(1, 4, 3), nn.ConvTranspose1d(4, 1, 8, 4), nn.Conv1d(1, 1, 3), nn.Conv1d(1, 1, 3)
    )


def broken():
    raise ValueError("boom\\nsecond line")


def not_module():
    return 42


NOT_CALLABLE = 3
"""


def tiny(seed: int = 1) -> nn.Module:
    """Same layout as ``mymodels:Net``; a seed that differs from load_model's default of 0."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv1d(1, 4, 3), nn.ConvTranspose1d(4, 1, 8, 4)).eval()


X = torch.linspace(-1.0, 1.0, 64).reshape(1, 1, 64)


def same_output(a: nn.Module, b: nn.Module, x: torch.Tensor = X) -> bool:
    with torch.no_grad():
        return torch.equal(a(x), b(x))


def traced(model: nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():  # torch.jit is deprecated in torch 2.14
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.trace(model, X)


def usage_error(*args, **kwargs) -> str:
    """Call load_model; assert it raises a UsageError with a one-line message and return it."""
    with pytest.raises(UsageError) as info:
        load_model(*args, **kwargs)
    message = str(info.value)
    assert message and "\n" not in message and "\r" not in message
    return message


class Touch:
    """A malicious payload: unpickling it creates ``target``."""

    def __init__(self, target: pathlib.Path) -> None:
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (self.target,))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """tmp_path as the current directory, holding an importable ``mymodels.py``."""
    (tmp_path / "mymodels.py").write_text(MYMODELS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("mymodels", None)


# --- building from --arch -------------------------------------------------------------------


def test_fresh_arch_is_built_under_the_seed_in_eval_mode(workdir):
    a = load_model(None, "mymodels:Net", seed=3)
    b = load_model(None, "mymodels:Net", seed=3)
    c = load_model(None, "mymodels:Net", seed=4)
    assert isinstance(a, LoadedModel) and a.source == "arch" and a.example_inputs is None
    assert not a.module.training
    assert same_output(a.module, b.module) and not same_output(a.module, c.module)


def test_fresh_arch_leaves_the_global_rng_alone(workdir):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_model(None, "mymodels:Net", seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_no_checkpoint_and_no_arch_is_a_usage_error():
    assert "--arch" in usage_error(None)


def test_build_arch_passes_keyword_arguments(workdir):
    assert build_arch("mymodels:Net", {"channels": 6})[0].out_channels == 6


def test_build_arch_imports_from_the_current_directory_when_not_on_sys_path(workdir, monkeypatch):
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(workdir))])
    assert isinstance(build_arch("mymodels:Net"), nn.Sequential)
    assert str(workdir) in sys.path


def test_build_arch_accepts_library_callables():
    model = build_arch("torchaudio.models:conv_tasnet_base", {"num_sources": 1})
    assert isinstance(model, nn.Module)


@pytest.mark.parametrize(
    ("spec", "kwargs", "expected"),
    [
        ("", None, "MODULE:CALLABLE"),
        ("mymodels", None, "MODULE:CALLABLE"),
        ("mymodels:", None, "MODULE:CALLABLE"),
        (":Net", None, "MODULE:CALLABLE"),
        ("my models:Net", None, "MODULE:CALLABLE"),
        ("no_such_module_upsampcheck:Net", None, "cannot import"),
        ("mymodels:Missing", None, "no attribute"),
        ("mymodels:NOT_CALLABLE", None, "not callable"),
        ("mymodels:broken", None, "boom"),
        ("mymodels:not_module", None, "not a torch.nn.Module"),
        ("mymodels:Net", {"bogus": 1}, "bogus"),
    ],
)
def test_bad_arch_specs_are_one_line_usage_errors(workdir, spec, kwargs, expected):
    with pytest.raises(UsageError) as info:
        build_arch(spec, kwargs)
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert expected in usage_error(None, spec, kwargs)


# --- weights-only formats -------------------------------------------------------------------


def test_plain_state_dict_round_trips(workdir):
    model = tiny()
    torch.save(model.state_dict(), workdir / "sd.pt")
    loaded = load_model(workdir / "sd.pt", "mymodels:Net")
    assert loaded.source == "state_dict" and loaded.notes == []
    assert not loaded.module.training and same_output(loaded.module, model)


def test_legacy_non_zip_state_dict_round_trips(workdir):
    model = tiny()
    torch.save(model.state_dict(), workdir / "old.pt", _use_new_zipfile_serialization=False)
    assert same_output(load_model(workdir / "old.pt", "mymodels:Net").module, model)


def test_lightning_checkpoint_loads_with_its_model_prefix_stripped(workdir):
    model = tiny()
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 3, "global_step": 100}, workdir / "last.ckpt")
    loaded = load_model(workdir / "last.ckpt", "mymodels:Net")
    assert loaded.source == "lightning" and same_output(loaded.module, model)
    assert "stripped prefix 'model.' from 4 keys" in loaded.notes


def test_state_dict_nested_under_model_key_loads(workdir):
    model = tiny()
    torch.save({"model": model.state_dict(), "epoch": 7, "best": 0.5}, workdir / "ck.pt")
    loaded = load_model(workdir / "ck.pt", "mymodels:Net")
    assert loaded.source == "state_dict" and same_output(loaded.module, model)
    assert any("['model']" in note for note in loaded.notes)


def test_data_parallel_module_prefix_is_stripped(workdir):
    model = tiny()
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, workdir / "dp.pt")
    loaded = load_model(workdir / "dp.pt", "mymodels:Net")
    assert same_output(loaded.module, model)
    assert loaded.notes == ["stripped prefix 'module.' from 4 keys"]


def test_gan_checkpoint_uses_the_keys_under_the_prefix_that_fits(workdir):
    gen, disc = tiny(1), tiny(2)
    state = {f"generator.{k}": v for k, v in gen.state_dict().items()}
    state |= {f"discriminator.{k}": v for k, v in disc.state_dict().items()}
    torch.save({"state_dict": state}, workdir / "gan.ckpt")
    loaded = load_model(workdir / "gan.ckpt", "mymodels:Net")
    assert same_output(loaded.module, gen)
    assert "stripped prefix 'generator.' from 4 keys and ignored 4 other keys" in loaded.notes


def test_ambiguous_prefixes_are_a_usage_error(workdir):
    state = {f"{p}.{k}": v for p in ("left", "right") for k, v in tiny().state_dict().items()}
    torch.save(state, workdir / "two.pt")
    assert "left., right." in usage_error(workdir / "two.pt", "mymodels:Net")


def test_safetensors_round_trips(workdir):
    from safetensors.torch import save_file

    model = tiny()
    save_file(model.state_dict(), str(workdir / "m.safetensors"))
    loaded = load_model(workdir / "m.safetensors", "mymodels:Net")
    assert loaded.source == "safetensors" and same_output(loaded.module, model)


def test_format_is_detected_by_content_not_extension(workdir):
    from safetensors.torch import save_file

    model = tiny()
    save_file(model.state_dict(), str(workdir / "really_safetensors.pt"))
    torch.save(model.state_dict(), workdir / "really_torch.safetensors")
    assert load_model(workdir / "really_safetensors.pt", "mymodels:Net").source == "safetensors"
    assert load_model(workdir / "really_torch.safetensors", "mymodels:Net").source == "state_dict"


def test_safetensors_without_the_package_says_how_to_install_it(workdir, monkeypatch):
    from safetensors.torch import save_file

    save_file(tiny().state_dict(), str(workdir / "m.safetensors"))
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    assert "pip install safetensors" in usage_error(workdir / "m.safetensors", "mymodels:Net")


def test_conv_tasnet_state_dict_round_trips(tmp_path):
    arch = "torchaudio.models:conv_tasnet_base"
    model = build_arch(arch, {"num_sources": 2}).eval()
    torch.save(
        {"state_dict": {f"net.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "c"
    )
    loaded = load_model(tmp_path / "c", arch, {"num_sources": 2}, seed=5)
    x = torch.linspace(-1.0, 1.0, 800).reshape(1, 1, 800)
    assert same_output(loaded.module, model, x)


def test_state_dict_without_arch_asks_for_arch(tmp_path):
    torch.save(tiny().state_dict(), tmp_path / "sd.pt")
    assert "pass --arch MODULE:CALLABLE" in usage_error(tmp_path / "sd.pt")


def test_mismatched_arch_lists_missing_keys_and_counts(workdir):
    torch.save(tiny().state_dict(), workdir / "sd.pt")
    message = usage_error(workdir / "sd.pt", "mymodels:Wide")
    assert "4 missing keys (2.bias, 2.weight, 3.bias, ...)" in message


def test_mismatched_arch_lists_unexpected_keys_and_counts(workdir):
    torch.save(build_arch("mymodels:Wide").state_dict(), workdir / "wide.pt")
    assert "4 unexpected keys (2.bias, 2.weight, 3.bias, ...)" in usage_error(
        workdir / "wide.pt", "mymodels:Net"
    )


def test_mismatched_arch_lists_shape_mismatches(workdir):
    torch.save(tiny().state_dict(), workdir / "sd.pt")
    message = usage_error(workdir / "sd.pt", "mymodels:Net", {"channels": 6})
    assert (
        "3 shape mismatches (0.bias (4,) vs (6,), 0.weight (4, 1, 3) vs (6, 1, 3), 1.weight"
        in message
    )


@pytest.mark.parametrize("content", [{"epoch": 3, "lr": 0.1}, [1, 2, 3], torch.zeros(3)])
def test_checkpoint_without_a_state_dict_is_a_usage_error(workdir, content):
    torch.save(content, workdir / "odd.pt")
    assert "not a state dict" in usage_error(workdir / "odd.pt", "mymodels:Net")


# --- formats that can run code: refused unless trusted ---------------------------------------


@pytest.fixture(scope="module")
def code_files(tmp_path_factory):
    """TorchScript, torch.export and whole-module pickles of ``tiny()``, written once."""
    root = tmp_path_factory.mktemp("code")
    model = tiny()
    with warnings.catch_warnings():  # torch.jit is deprecated in torch 2.14
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(model).save(str(root / "scripted.pt"))
    traced(model).save(str(root / "traced.pt"))
    torch.export.save(torch.export.export(model, (X,)), root / "exported.pt2")
    torch.save(model, root / "whole.pt")
    torch.save(model, root / "whole_legacy.pt", _use_new_zipfile_serialization=False)
    return root


CODE_CASES = [
    ("scripted.pt", "torchscript", "TorchScript"),
    ("traced.pt", "torchscript", "TorchScript"),
    ("exported.pt2", "torch_export", "torch.export"),
    ("whole.pt", "pickled_module", "torch.nn.modules.container.Sequential"),
    ("whole_legacy.pt", "pickled_module", "torch.nn.modules.container.Sequential"),
]


@pytest.mark.parametrize(("name", "source", "why"), CODE_CASES)
def test_code_formats_are_refused_without_trust(code_files, name, source, why):
    message = usage_error(code_files / name, "torchaudio.models:conv_tasnet_base")
    assert "--trust-checkpoint" in message and why in message and "refusing" in message


@pytest.mark.parametrize(("name", "source", "why"), CODE_CASES)
def test_code_formats_load_when_trusted(code_files, name, source, why):
    loaded = load_model(code_files / name, trust_checkpoint=True)
    assert loaded.source == source and same_output(loaded.module, tiny())


def test_trusted_export_keeps_its_example_inputs(code_files):
    loaded = load_model(code_files / "exported.pt2", trust_checkpoint=True)
    assert loaded.example_inputs is not None and torch.equal(loaded.example_inputs[0], X)


def test_trusted_code_format_notes_that_arch_is_ignored(code_files, workdir):
    loaded = load_model(code_files / "traced.pt", "mymodels:Net", trust_checkpoint=True)
    assert any("ignored --arch" in note for note in loaded.notes)


def test_pickle_with_extra_objects_needs_trust_then_loads_its_state_dict(workdir):
    model = tiny()
    torch.save({"model": model.state_dict(), "rng": random.Random(1)}, workdir / "a.pt")
    message = usage_error(workdir / "a.pt", "mymodels:Net")
    assert "random.Random" in message and "--trust-checkpoint" in message
    loaded = load_model(workdir / "a.pt", "mymodels:Net", trust_checkpoint=True)
    assert loaded.source == "state_dict" and same_output(loaded.module, model)


def test_trusted_pickle_holding_a_module_under_a_key_loads_it(workdir):
    model = tiny()
    torch.save({"model": model, "epoch": 2}, workdir / "m.pt")
    assert "--trust-checkpoint" in usage_error(workdir / "m.pt")
    loaded = load_model(workdir / "m.pt", trust_checkpoint=True)
    assert loaded.source == "pickled_module" and same_output(loaded.module, model)


def write_raw_pickle(path: pathlib.Path, obj: object, protocol: int) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


MALICIOUS_WRITERS = {
    "raw_pickle_protocol_2": lambda p, o: write_raw_pickle(p, o, 2),
    "raw_pickle_protocol_4": lambda p, o: write_raw_pickle(p, o, 4),
    "torch_save_zip": lambda p, o: torch.save(o, p),
    "torch_save_legacy": lambda p, o: torch.save(o, p, _use_new_zipfile_serialization=False),
    "inside_a_checkpoint": lambda p, o: torch.save({"state_dict": tiny().state_dict(), "x": o}, p),
}


def test_malicious_payload_really_runs_when_unpickled(tmp_path):
    """Guards the test below: the payload is live, so its refusal means something."""
    pickle.loads(pickle.dumps(Touch(tmp_path / "ran")))
    assert (tmp_path / "ran").exists()


@pytest.mark.parametrize("writer", MALICIOUS_WRITERS)
def test_malicious_pickle_is_refused_and_never_runs(workdir, writer):
    target = workdir / "pwned"
    MALICIOUS_WRITERS[writer](workdir / "evil.pt", Touch(target))
    assert not target.exists()
    for arch in (None, "mymodels:Net"):
        message = usage_error(workdir / "evil.pt", arch)
        assert "--trust-checkpoint" in message
        assert not target.exists()


# --- unreadable input -----------------------------------------------------------------------


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def make_bad_file(kind: str, root: pathlib.Path) -> pathlib.Path:
    path = root / f"bad_{kind}"
    if kind == "missing":
        return path
    if kind == "directory":
        path.mkdir()
        return path
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random_bytes":
        path.write_bytes(b"\x17" + random.Random(0).randbytes(999))
    elif kind == "text":
        path.write_text("not a checkpoint\n")
    elif kind == "other_zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("readme.txt", "hello")
    elif kind == "bad_safetensors":
        path = root / "bad.safetensors"
        path.write_bytes((20).to_bytes(8, "little") + b'{"w": garbage, truncated')
    else:  # truncated copies of real files
        source = root / "source"
        if kind == "truncated_zip":
            torch.save(tiny().state_dict(), source)
        elif kind == "truncated_legacy":
            torch.save(tiny().state_dict(), source, _use_new_zipfile_serialization=False)
        elif kind == "truncated_torchscript":
            traced(tiny()).save(str(source))
        path.write_bytes(truncated(source.read_bytes()))
    return path


BAD_FILES = {
    "missing": "no such file",
    "directory": "is a directory",
    "empty": "is empty",
    "random_bytes": "not a PyTorch checkpoint",
    "text": "not a PyTorch checkpoint",
    "other_zip": "not a PyTorch checkpoint",
    "bad_safetensors": "cannot read",
    "truncated_zip": "truncated or corrupt zip",
    "truncated_legacy": "unexpected end of file",
    "truncated_torchscript": "truncated or corrupt zip",
}


@pytest.mark.parametrize("trust", [False, True], ids=["untrusted", "trusted"])
@pytest.mark.parametrize("kind", BAD_FILES)
def test_unreadable_files_are_one_line_usage_errors(workdir, kind, trust):
    path = make_bad_file(kind, workdir)
    message = usage_error(path, "mymodels:Net", trust_checkpoint=trust)
    assert BAD_FILES[kind] in message and str(path) in message
