"""Checkpoints made to hurt (issue 18, rows 2, 3, 5, 11, 14 and 17): every one is a one-line
exit 2 that names the problem, refused before the memory or time it asks for is spent, and the
user's files (a fake HOME, :func:`conftest.snapshot`) are the same byte for byte afterwards.

The arch throughout is ``model_fixtures:OnesTransposed``: one weight ``up.weight`` of shape
(1, 1, 5), 20 bytes.
"""

from __future__ import annotations

import io
import os
import random
import re
import struct
import subprocess
import sys
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import model_fixtures
import pytest
import torch
from conftest import snapshot

import upsampcheck.bounds
import upsampcheck.model.check
import upsampcheck.subjects.loading
import upsampcheck.subjects.readers
import upsampcheck.subjects.vetting
from upsampcheck.subjects import state_dicts

ARCH = ["--arch", "model_fixtures:OnesTransposed"]
REPO = Path(__file__).resolve().parent.parent
GIB = 2**30


def exits_2(result, tmp_path: Path, *words: str) -> None:
    """Exit 2, one line on stderr naming the problem, no traceback, no raw escape, no report."""
    assert result.code == 2, result.err
    assert result.err.count("\n") == 1 and result.err.startswith("upsampcheck: error:"), result.err
    assert "Traceback" not in result.err and "\x1b" not in result.err
    for word in words:
        assert word in result.err
    assert not (tmp_path / "report").exists()


def checkpoint(home: Path, name: str, state: object, **save) -> Path:
    path = home / "work" / name
    torch.save(state, path, **save)
    return path


def weights() -> dict[str, torch.Tensor]:
    return model_fixtures.OnesTransposed().state_dict()


# --- a zip archive written by hand: any method, any declared size ----------------------------


def write_zip(path: Path, records: list[tuple[str, bytes, int, int]]) -> None:
    """A zip file of ``(name, data, method, declared size)`` records, as a forger writes one:
    the data as given (already deflated for ``ZIP_DEFLATED``), the sizes as declared. CRCs are
    left 0: the file is refused from its directory, so nothing ever reads the data."""
    out, central = bytearray(), bytearray()
    for name, data, method, size in records:
        raw, offset = name.encode(), len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, 0, len(data),
                           size, len(raw), 0) + raw + data  # fmt: skip
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, 0,
                               len(data), size, len(raw), 0, 0, 0, 0, 0, offset) + raw  # fmt: skip
    start = len(out)
    out += central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(records), len(records),
                                 len(central), start, 0)  # fmt: skip
    path.write_bytes(bytes(out))


def zeros_deflated(size: int, chunk: int = 2**24) -> bytes:
    """A raw deflate stream of ``size`` zero bytes, made in milliseconds: each chunk ends with a
    full flush, which resets the compressor, so every chunk deflates to the same bytes."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = co.compress(bytes(chunk)) + co.flush(zlib.Z_FULL_FLUSH)
    return block * (size // chunk) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def bomb(path: Path, declared: int = 2 * GIB, method: int = zipfile.ZIP_DEFLATED) -> Path:
    """The issue's checkpoint: ``torch.save`` of ``up.weight`` (1, 1, 5), a view of a storage
    whose pickle declares ``declared`` bytes, the storage record deflated (``ZIP_DEFLATED``:
    about 2 MB for 2 GiB) or stored with only 20 bytes behind it (``ZIP_STORED``)."""
    buf = io.BytesIO()
    torch.save({"up.weight": torch.ones(1000)[:5].view(1, 1, 5)}, buf)
    with zipfile.ZipFile(buf) as zf:
        records = {info.filename: zf.read(info) for info in zf.infolist()}
    (pkl,) = [n for n in records if n.endswith("/data.pkl")]
    (storage,) = [n for n in records if n.endswith("/data/0")]
    numel = struct.pack("<i", declared // 4)
    records[pkl] = records[pkl].replace(b"M\xe8\x03", b"J" + numel, 1)  # storage numel 1000
    body = zeros_deflated(declared) if method == zipfile.ZIP_DEFLATED else bytes(20)
    rows = [
        (name, body, method, declared) if name == storage
        else (name, data, zipfile.ZIP_STORED, len(data))
        for name, data in records.items()
    ]  # fmt: skip
    write_zip(path, rows)
    return path


CHILD = """
import os, sys
from upsampcheck.cli.main import main
code = main(sys.argv[1:])
with open("/proc/self/status") as fh:
    peak = next(line for line in fh if line.startswith("VmHWM:")).split()[1]
with open(os.environ["PEAK_FILE"], "w") as fh:
    fh.write(peak)
os._exit(code)
"""


def peak_run(args: list[str], cwd: Path, home: Path) -> tuple[int, str, float, float]:
    """``upsampcheck ARGS`` in a child process: exit code, stderr, wall seconds and the
    child's own peak RSS in MiB.

    The peak is the child's ``VmHWM`` (read from /proc at its end), not ``ru_maxrss``: a child
    started from pytest keeps pytest's peak in ``ru_maxrss`` across ``exec``, which made a
    500 MiB run read 1 GiB inside the full suite. HOME is the fake one; matplotlib, which the
    figure renderer starts importing at once, keeps its font cache outside it
    (``MPLCONFIGDIR``), as the in-process runs' HOME already did."""
    peak_file = cwd / "peak.txt"
    env = {**os.environ, "HOME": str(home), "MPLCONFIGDIR": str(cwd / "mpl"),
           "PEAK_FILE": str(peak_file),
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=cwd, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    seconds = time.monotonic() - start
    peak_mib = int(peak_file.read_text()) / 1024
    return proc.returncode, proc.stderr.decode("utf-8", "replace"), seconds, peak_mib


# --- row 2: a checkpoint that declares more than it is, or more than the arch can use ---------


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc")
def test_a_2_mb_deflated_checkpoint_declaring_2_gib_is_refused_from_its_directory(
    user_home, tmp_path
):
    path = bomb(user_home / "work" / "bomb.pt")
    assert path.stat().st_size < 3 * 2**20
    before = snapshot(user_home)
    code, err, seconds, peak_mib = peak_run(
        ["model", str(path), *ARCH, "--out", str(tmp_path / "report")], tmp_path, user_home
    )
    assert code == 2 and err.count("\n") == 1, err
    assert "bomb.pt" in err and "is compressed" in err and "2.0 GiB" in err
    assert peak_mib < 1024  # python + torch alone take about 500 MiB; 2 GiB were declared
    assert seconds < 20  # about 2 s, torch's import included
    assert snapshot(user_home) == before and not (tmp_path / "report").exists()


def test_a_stored_record_that_claims_more_than_the_file_holds_is_refused(cli, user_home, tmp_path):
    path = bomb(user_home / "work" / "forged.pt", method=zipfile.ZIP_STORED)
    before = snapshot(user_home)
    exits_2(cli("model", str(path), *ARCH), tmp_path, "forged.pt", "forged or truncated")
    assert snapshot(user_home) == before


@pytest.fixture
def never_loaded(monkeypatch):
    """Any torch.load of a checkpoint is a failure: the refusal must come first."""

    def fail(*args, **kwargs):
        raise AssertionError("torch.load reached")

    monkeypatch.setattr(upsampcheck.subjects.readers, "torch_load_file", fail)
    monkeypatch.setattr(upsampcheck.subjects.loading, "read_safetensors", fail)


def big_view() -> dict[str, torch.Tensor]:
    """A state dict that fits the arch, ``up.weight`` a view of a 400 KB storage."""
    return {"up.weight": torch.ones(100_000)[:5].view(1, 1, 5)}


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
def test_a_checkpoint_holding_more_than_the_arch_can_use_is_refused_before_loading(
    cli, user_home, tmp_path, monkeypatch, never_loaded, legacy
):
    monkeypatch.setattr(upsampcheck.subjects.vetting, "SLACK", 4096)  # 16 x 20 bytes + 4 KiB
    save = {"_use_new_zipfile_serialization": False} if legacy else {}
    path = checkpoint(user_home, "big.pt", big_view(), **save)
    before = snapshot(user_home)
    result = cli("model", str(path), *ARCH)
    exits_2(result, tmp_path, "refusing", "big.pt", "KiB of data", "more than --arch")
    assert "its weights take 20 bytes" in result.err
    assert snapshot(user_home) == before


def test_a_legacy_pickle_whose_storage_claims_2_gib_is_refused_without_reading_it(
    cli, user_home, tmp_path
):
    """A legacy (non-zip) ``torch.save`` keeps its storages raw after the pickle; one whose
    pickle claims 2 GiB for a 4 KB storage is refused by torch when the bytes are not there:
    exit 2, nothing allocated that is ever touched."""
    buf = io.BytesIO()
    torch.save({"up.weight": torch.ones(1000)[:5].view(1, 1, 5)}, buf,
               _use_new_zipfile_serialization=False)  # fmt: skip
    forged = buf.getvalue().replace(b"M\xe8\x03", b"J" + struct.pack("<i", GIB // 2), 1)
    path = user_home / "work" / "legacy.pt"
    path.write_bytes(forged)
    before = snapshot(user_home)
    start = time.monotonic()
    result = cli("model", str(path), *ARCH)
    assert time.monotonic() - start < 5
    exits_2(result, tmp_path, "legacy.pt", "cannot read")
    assert snapshot(user_home) == before


def test_a_checkpoint_beyond_the_memory_available_is_refused_before_loading(
    cli, user_home, tmp_path, monkeypatch, never_loaded
):
    monkeypatch.setattr(upsampcheck.bounds, "available_memory", lambda: 64 * 2**10)
    path = checkpoint(user_home, "big.pt", big_view())
    before = snapshot(user_home)
    exits_2(cli("model", str(path), *ARCH), tmp_path, "big.pt", "64.0 KiB of memory")
    assert snapshot(user_home) == before


def test_a_checkpoint_within_the_budget_still_loads(cli, user_home, tmp_path):
    path = checkpoint(user_home, "fits.pt", big_view())
    result = cli("model", str(path), *ARCH, "--input-shape", "1,4096", "--no-plots")
    assert result.code in (0, 1), result.err


def safetensors_bytes(header: dict, data: bytes) -> bytes:
    import json

    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


SAFETENSORS = {
    "header longer than the file": (
        (2**40).to_bytes(8, "little") + b'{"up.weight": {}}',
        "safetensors header claims",
    ),
    "offsets past the data": (
        safetensors_bytes(
            {"up.weight": {"dtype": "F32", "shape": [1, 1, 5], "data_offsets": [0, 2 * GIB]}},
            bytes(20),
        ),
        "claims bytes 0 to 2147483648 of 20",
    ),
    "shape larger than its bytes": (
        safetensors_bytes(
            {"up.weight": {"dtype": "F32", "shape": [1, 1, 2**28], "data_offsets": [0, 20]}},
            bytes(20),
        ),
        "claims shape [1, 1, 268435456] of F32 in 20 bytes",
    ),
    "an entry that is no table": (safetensors_bytes({"up.weight": [1, 2]}, b""), "has no dtype"),
    "not JSON": ((9).to_bytes(8, "little") + b'{"a": [1,', "header is not JSON"),
}


@pytest.mark.parametrize("case", SAFETENSORS)
def test_a_forged_safetensors_header_is_refused_before_loading(
    cli, user_home, tmp_path, never_loaded, case
):
    content, words = SAFETENSORS[case]
    path = user_home / "work" / "w.safetensors"
    path.write_bytes(content)
    before = snapshot(user_home)
    exits_2(cli("model", str(path), *ARCH), tmp_path, "w.safetensors", words)
    assert snapshot(user_home) == before


def test_a_safetensors_file_beyond_the_budget_is_refused(
    cli, user_home, tmp_path, monkeypatch, never_loaded
):
    monkeypatch.setattr(upsampcheck.subjects.vetting, "SLACK", 4096)
    header = {
        "up.weight": {"dtype": "F32", "shape": [1, 1, 5], "data_offsets": [0, 20]},
        "pad": {"dtype": "U8", "shape": [100_000], "data_offsets": [20, 100_020]},
    }
    path = user_home / "work" / "w.safetensors"
    path.write_bytes(safetensors_bytes(header, bytes(100_020)))
    exits_2(cli("model", str(path), *ARCH), tmp_path, "w.safetensors", "more than --arch")


def test_a_trusted_torchscript_archive_with_a_compressed_tensor_is_refused(
    cli, user_home, tmp_path
):
    source = tmp_path / "traced.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = model_fixtures.OnesTransposed().eval()
        torch.jit.trace(module, torch.zeros(1, 1, 64)).save(str(source))
    path = user_home / "work" / "traced.pt"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            tensor = info.filename.partition("/")[2].startswith("data/")
            dst.writestr(info.filename, src.read(info),
                         zipfile.ZIP_DEFLATED if tensor else info.compress_type)  # fmt: skip
    result = cli("model", str(path), "--trust-checkpoint")
    exits_2(result, tmp_path, "traced.pt", "is compressed")


# --- row 3: keys that used to take minutes -----------------------------------------------------


OLD_NORM = re.compile(r"^(?P<base>.*?)(?P<name>[A-Za-z_]\w*)_(?P<part>[gv])$")
NEW_NORM = re.compile(r"^(?P<base>.*?)parametrizations\.(?P<name>\w+)\.original(?P<part>[01])$")


def test_weight_norm_renaming_matches_the_old_patterns_on_random_keys():
    """The string-operation renaming gives what the backtracking patterns gave, key by key."""

    def new_style(key: str) -> str | None:
        m = OLD_NORM.match(key)
        part = m and ("0" if m["part"] == "g" else "1")
        return m and f"{m['base']}parametrizations.{m['name']}.original{part}"

    def old_style(key: str) -> str | None:
        m = NEW_NORM.match(key)
        return m and f"{m['base']}{m['name']}_{'g' if m['part'] == '0' else 'v'}"

    rng = random.Random(18)
    atoms = ["a", "Z", "_", "0", ".", "é", "٣", "-", "_g", "_v", " ", "parametrizations.",
             ".original0", "original1"]  # fmt: skip
    for _ in range(20_000):
        key = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 8)))
        assert state_dicts._new_style(key) == new_style(key), key
        assert state_dicts._old_style(key) == old_style(key), key


HOSTILE_KEYS = {
    # the old pattern retried the identifier from every start: minutes at 64,000 characters
    "one 1 MB key": lambda: {**weights(), "w" * 2**20: torch.zeros(1)},
    "one 1 MB weight-norm-like key": lambda: {**weights(), "w" * 2**20 + "_g": torch.zeros(1)},
    "one 1 MB dotted key": lambda: {**weights(), "a." * 2**19 + "weight_v": torch.zeros(1)},
    # every prefix compared with every key: quadratic
    "200,000 distinct prefixes": lambda: {
        **weights(),
        **dict.fromkeys((f"p{i}.x" for i in range(200_000)), torch.zeros(1)),
    },
    "200,000 prefixes that each fit": lambda: dict.fromkeys(
        (f"p{i}.up.weight" for i in range(200_000)), torch.zeros(1, 1, 5)
    ),
}
HOSTILE_WORDS = {"200,000 prefixes that each fit": "several parts of the checkpoint fit"}


@pytest.mark.parametrize("case", HOSTILE_KEYS)
def test_hostile_keys_are_refused_within_seconds_in_one_short_line(cli, user_home, tmp_path, case):
    path = checkpoint(user_home, "keys.pt", HOSTILE_KEYS[case]())
    before = snapshot(user_home)
    start = time.monotonic()
    result = cli("model", str(path), *ARCH)
    assert time.monotonic() - start < 10  # about 1 s for 200,000 keys; hours before
    exits_2(result, tmp_path, "keys.pt", HOSTILE_WORDS.get(case, "unexpected keys"))
    assert len(result.err) < 1000
    assert snapshot(user_home) == before


def test_a_checkpoint_that_loads_too_slowly_is_stopped_by_timeout(
    cli, user_home, tmp_path, monkeypatch
):
    def slow(*args, **kwargs):
        time.sleep(30)

    monkeypatch.setattr(upsampcheck.subjects.readers, "torch_load_file", slow)
    path = checkpoint(user_home, "slow.pt", weights())
    start = time.monotonic()
    result = cli("model", str(path), *ARCH, "--timeout", "0.5")
    assert time.monotonic() - start < 5
    exits_2(result, tmp_path, "slow.pt", "--timeout 0.5 s", "still loading")


# --- row 5: weights-only tensors the model cannot run ------------------------------------------


def odd(kind: str) -> dict[str, torch.Tensor]:
    """``up.weight`` as a tensor of ``kind`` that loads as weights only but cannot run."""
    weight = weights()["up.weight"]
    with warnings.catch_warnings():  # "sparse CSR support is in beta", when it is made here
        warnings.simplefilter("ignore")
        make = {
            "float8": lambda: weight.to(torch.float8_e4m3fn),
            "float8_e5m2": lambda: weight.to(torch.float8_e5m2),
            "meta": lambda: weight.to("meta"),
            "sparse_coo": lambda: weight.to_sparse(),
            "sparse_csr": lambda: weight.reshape(1, 5).to_sparse_csr(),
            "complex": lambda: weight.to(torch.complex64),
            "int": lambda: weight.to(torch.int32),
        }
        return {"up.weight": make[kind]()}


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("float8", "is torch.float8_e4m3fn"),
        ("float8_e5m2", "is torch.float8_e5m2"),
        ("meta", "meta device"),
        ("sparse_coo", "torch.sparse_coo"),
        ("sparse_csr", "torch.sparse_csr"),
        ("complex", "is torch.complex64"),
        ("int", "is torch.int32"),
    ],
)
def test_a_tensor_the_model_cannot_run_is_exit_2_naming_the_key_without_warnings(
    cli, user_home, tmp_path, kind, words
):
    path = checkpoint(user_home, f"{kind}.pt", odd(kind))
    before = snapshot(user_home)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cli("model", str(path), *ARCH)
    exits_2(result, tmp_path, f"{kind}.pt", "tensor up.weight", words)
    assert caught == []  # nothing for Python to print on stderr
    assert snapshot(user_home) == before


def test_control_characters_in_keys_are_printed_escaped(cli, user_home, tmp_path):
    state = {"\x1b[31mRED\x1b[0m.weight\r\x07": torch.zeros(1), **weights()}
    path = checkpoint(user_home, "ansi.pt", state)
    result = cli("model", str(path), *ARCH)
    exits_2(result, tmp_path, "ansi.pt", "\\x1b[31mRED\\x1b[0m.weight\\r\\x07")
    assert "\r" not in result.err and "\x07" not in result.err


def test_shown_key_escapes_and_shortens():
    assert state_dicts.shown_key("a\x1bb\\c") == "a\\x1bb\\\\c"
    assert state_dicts.shown_key("k", quoted=True) == "'k'"
    long = state_dicts.shown_key("x" * 10**6)
    assert len(long) <= state_dicts.KEY_SHOWN and "[...]" in long


# --- row 11: --device and --input-shape -----------------------------------------------------


FAST_LAYER = ["layer", "--type", "transposed", "--length", "5", "--stride", "4", "--no-plots"]


@pytest.mark.parametrize("value", ["meta", "tpu", "cpu:0", "cuda:x", "\x1b[31m", "mps:0"])
@pytest.mark.parametrize("command", ["layer", "model"])
def test_a_device_that_cannot_compute_is_exit_2(cli, user_home, tmp_path, command, value):
    args = FAST_LAYER if command == "layer" else ["model", *ARCH]
    before = snapshot(user_home)
    exits_2(cli(*args, "--device", value), tmp_path, "unknown device")
    assert snapshot(user_home) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
@pytest.mark.parametrize("value", ["cuda", "cuda:0", "cuda:7"])
def test_a_cuda_device_that_is_not_here_is_exit_2(cli, tmp_path, value):
    exits_2(cli(*FAST_LAYER, "--device", value), tmp_path, "no CUDA device")


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ("1,1000000000", "time axis (last) must be at most 16777216"),
        ("8192,16384", "at most 67108864 values"),
        ("1,1,1,1,16", "at most 4 dimensions"),
        ("1," + "9" * 5000, "expected integers"),
    ],
)
def test_an_input_shape_out_of_bounds_is_refused_at_once(cli, tmp_path, shape, words):
    start = time.monotonic()
    result = cli("model", *ARCH, "--input-shape", shape)
    assert time.monotonic() - start < 5  # 150 s at 7.4 GB before
    exits_2(result, tmp_path, "--input-shape", words)


def test_an_input_shape_that_would_not_fit_in_memory_is_refused_before_any_pass(
    cli, tmp_path, monkeypatch
):
    monkeypatch.setattr(upsampcheck.bounds, "available_memory", lambda: GIB)

    def never(*args, **kwargs):
        raise AssertionError("the model ran")

    monkeypatch.setattr(upsampcheck.model.check, "check_model", never)
    result = cli("model", *ARCH, "--input-shape", "4096,16384")
    exits_2(result, tmp_path, "would need about 2.5 GiB", "shorten --input-shape")


# --- row 17: several checkpoints, one bad ------------------------------------------------------


def test_a_bad_checkpoint_among_several_is_refused_before_any_is_analysed(
    cli, user_home, tmp_path, monkeypatch
):
    analysed = []
    monkeypatch.setattr(upsampcheck.model.check, "check_model",
                        lambda *a, **k: analysed.append(a) or pytest.fail("analysed"))  # fmt: skip
    paths = [checkpoint(user_home, f"step={n}.pt", weights()) for n in (100, 200)]
    paths.append(checkpoint(user_home, "step=300.pt", odd("float8")))
    before = snapshot(user_home)
    result = cli("model", *map(str, paths), *ARCH)
    exits_2(result, tmp_path, "step=300.pt", "float8")
    assert analysed == []
    assert snapshot(user_home) == before


def test_a_bomb_among_several_checkpoints_is_refused_before_any_is_read(
    cli, user_home, tmp_path, monkeypatch
):
    good = checkpoint(user_home, "a.pt", weights())
    bad = bomb(user_home / "work" / "b.pt")
    loads = []
    real = upsampcheck.subjects.readers.torch_load_file
    monkeypatch.setattr(upsampcheck.subjects.readers, "torch_load_file",
                        lambda p, **k: loads.append(p) or real(p, **k))  # fmt: skip
    exits_2(cli("model", str(good), str(bad), *ARCH), tmp_path, "b.pt", "is compressed")
    assert loads == [good]  # a.pt checked, b.pt refused from its directory


# --- row 14: a checkpoint path that is not UTF-8 -----------------------------------------------


def test_a_checkpoint_path_that_is_not_utf8_is_shown_escaped(cli, user_home, tmp_path):
    folder = os.fsencode(user_home / "work")
    good = Path(os.fsdecode(folder + b"/ckpt-\xff.pt"))
    torch.save(weights(), good)
    result = cli("model", str(good), *ARCH, "--input-shape", "1,4096", "--no-plots",
                 "--format", "json", out=tmp_path / "good")  # fmt: skip
    assert result.code in (0, 1), result.err
    assert result.json()["subject"]["name"] == "ckpt-\\xff.pt"
    bad = Path(os.fsdecode(folder + b"/f8-\xfe.pt"))
    torch.save(odd("float8"), bad)
    exits_2(cli("model", str(bad), *ARCH), tmp_path, "f8-\\xfe.pt", "float8")
