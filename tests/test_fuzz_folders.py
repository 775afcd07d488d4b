"""Property-based fuzzing of what comes from elsewhere on disk: report folders with forged
markers (paths that climb out, absolute paths, links, FIFOs, wrong hashes, junk JSON) and the
argument values that ask for impossible devices and shapes. Whatever is drawn: never exit 3,
never a traceback, never a byte changed outside ``--out``, and a refused folder untouched.

The profiles (``ci``, ``long``) are the ones :mod:`test_fuzz` registers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import make_home, snapshot
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz import check_outcome, run

from upsampcheck.outputs.marker import MARKER

VICTIMS = ["victim.txt", ".ssh/id_ed25519", "work/notes.md"]
"""The user's files, below HOME, that no run may touch."""


def hostile_paths(home: Path) -> st.SearchStrategy[str]:
    absolute = [str(home / v) for v in VICTIMS]
    return st.one_of(
        st.sampled_from(
            ["report.json", "verdict.txt", "audio/a.wav", "lnk", "lnk/id_ed25519", "sub",
             "sub/x.png", "fifo", "../victim.txt", "../home/victim.txt", "../../home/victim.txt",
             "./report.json", "a/./b", "a//b", "/", ".", "..", "", "report.json\x00",
             "a\\..\\victim.txt", "x" * 300, "é/ü.png", ".upsampcheck", "sub/../report.json",
             *absolute]
        ),
        st.text(st.sampled_from("ab./\\\x00é"), max_size=12),
    )  # fmt: skip


@st.composite
def forged_folder(draw, home: Path) -> tuple[dict[str, object], str]:
    """(what is on disk, the marker's text): files, links to the user's files and folders,
    folders, FIFOs; a marker listing drawn paths, some with right, wrong or no hashes."""
    disk: dict[str, object] = {}
    for name in draw(st.lists(st.sampled_from(
        ["report.json", "verdict.txt", "audio/a.wav", "sub/x.png", "notes.txt"]), max_size=4)
    ):  # fmt: skip
        disk[name] = b"data of " + name.encode()
    for name in draw(st.lists(st.sampled_from(["lnk", "audio", "sub/link", "report.json"]),
                              max_size=2)):  # fmt: skip
        disk[name] = ("link", str(home / draw(st.sampled_from([".ssh", "victim.txt", "work"]))))
    if draw(st.booleans()):
        disk["fifo"] = "fifo"
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return disk, draw(st.sampled_from(["[]", '"x"', "null", "{}", "[" * 5000, "\x00"]))
    entries: list[object] = []
    for path in draw(st.lists(hostile_paths(home), max_size=6)):
        data = disk.get(path)
        style = draw(st.sampled_from(["bare", "right", "wrong", "junk"]))
        if style == "bare":
            entries.append(path)
        elif style == "junk":
            entries.append(draw(st.sampled_from([{"path": path}, 7, None, [path]])))
        else:
            body = data if isinstance(data, bytes) else b""
            digest = hashlib.sha256(body if style == "right" else b"other").hexdigest()
            entries.append({"path": path, "size": len(body), "sha256": digest})
    tool = draw(st.sampled_from(["upsampcheck", "upsampcheck", "other"]))
    return disk, json.dumps({"tool": tool, "version": "0.1.0", "files": entries})


def lay_out(folder: Path, disk: dict[str, object], marker: str) -> None:
    folder.mkdir()
    for rel, what in disk.items():
        path = folder / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(what, bytes):
                path.write_bytes(what)
            elif what == "fifo":
                os.mkfifo(path)
            else:
                path.symlink_to(what[1])
        except OSError:  # a name drawn twice as file and folder: keep the first
            continue
    (folder / MARKER).write_text(marker, encoding="utf-8", errors="surrogateescape")


@pytest.fixture
def world(tmp_path_factory, monkeypatch):
    """A fixed HOME with the user's files, and a work folder reset for each example."""
    root = tmp_path_factory.mktemp("world")
    home = make_home(root / "home")
    work = root / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return home, work


def reset(work: Path) -> None:
    for entry in work.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX file kinds")
@given(data=st.data())
def test_forged_report_folders_never_lose_a_file(world, capsys, data):
    home, work = world
    reset(work)
    disk, marker = data.draw(forged_folder(home))
    out = work / "report"
    lay_out(out, disk, marker)
    home_before, out_before = snapshot(home), snapshot(out)
    code, _, err = run(["layer", "--stride", "2", "--out", "report"], work, capsys)
    check_outcome(code, err, work, {"report"})
    assert snapshot(home) == home_before
    if code == 2:
        assert snapshot(out) == out_before
    else:  # replaced: only the tool's own files were there, and now its new report is
        assert json.loads((out / "report.json").read_text())["exit_code"] == code


DEVICES = st.sampled_from(
    ["cpu", "meta", "cuda", "cuda:99", "cpu:0", "xla", "", "mps", "CPU", "cuda:-1", "0", "ipu"]
)
SHAPES = st.sampled_from(
    ["1,1000000000", "1,4000", "0,4000", "1,-1", "4000", "1,1,1,1", "99999999999999999999,2",
     "1,1e9", "", ",", "1025,4000", "2,16777217", "1, 4000"]
)  # fmt: skip


@given(device=DEVICES, shape=SHAPES, use_shape=st.booleans())
def test_fuzzed_devices_and_input_shapes_never_crash(world, capsys, device, shape, use_shape):
    home, work = world
    reset(work)
    home_before = snapshot(home)
    argv = ["layer", "--stride", "2", "--device", device, "--out", "report"]
    if use_shape:
        argv = ["model", "--arch", "torch.nn:Identity", "--input-shape", shape,
                "--device", device, "--out", "report"]  # fmt: skip
    code, _, err = run(argv, work, capsys)
    check_outcome(code, err, work, set())
    assert snapshot(home) == home_before
