"""Report folders made elsewhere: a forged marker never deletes anything, a killed run never
leaves a hidden copy for good, and ``--out`` / ``--write-baseline`` that cannot be written are
refused before any work. Every case keeps the user's files (a fake HOME) byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import snapshot

from upsampcheck.outputs.marker import MARKER, Foreign, claim, parse_marker, remove_claimed

FAST = ["layer", "--type", "transposed", "--length", "5", "--stride", "4", "--no-plots"]


def forged(folder: Path, files: object, **extra: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"tool": "upsampcheck", "version": "0.1.0", "files": files, **extra}
    (folder / MARKER).write_text(json.dumps(doc))
    return folder


def no_analysis(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the analysis ran")

    monkeypatch.setattr("upsampcheck.check.check_stack", refuse)


@pytest.mark.parametrize(
    "listing",
    [
        ["../../home/victim.txt"],
        ["../home/victim.txt"],
        ["HOME/.ssh/id_ed25519"],  # an absolute path, filled in below
        ["./report.json"],
        ["a/./b"],
        ["report.json\u0000"],
        ["a//b"],
        ["lnk", "lnk/id_ed25519"],  # through a listed symlink to ~/.ssh
        ["gone.json"],  # not on disk
        [".upsampcheck"],
        [7],
        [{"path": "report.json"}],
        "report.json",
    ],
)
def test_a_forged_marker_deletes_nothing_and_the_run_is_refused(
    cli, user_home, tmp_path, monkeypatch, listing
):
    no_analysis(monkeypatch)
    out = tmp_path / "out"
    listing = [str(user_home / ".ssh/id_ed25519") if x == "HOME/.ssh/id_ed25519" else x
               for x in listing] if isinstance(listing, list) else listing  # fmt: skip
    forged(out, listing)
    (out / "report.json").write_text("{}")
    if "lnk" in listing:
        (out / "lnk").symlink_to(user_home / ".ssh")
    before_home, before_out = snapshot(user_home), snapshot(out)
    result = cli(*FAST, "--out", str(out))
    assert result.code == 2, result.err
    assert result.err.count("\n") == 1 and "refusing to replace" in result.err
    assert snapshot(user_home) == before_home and snapshot(out) == before_out


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '"report.json"',
        "[" * 100_000 + "]" * 100_000,
        '{"tool": "upsampcheck", "files": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "\xff\xfe not text",
        "",
    ],
)
def test_a_marker_that_is_no_marker_makes_the_folder_foreign(cli, user_home, tmp_path, text):
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_bytes(text.encode("utf-8", "surrogateescape"))
    before = snapshot(tmp_path)
    result = cli(*FAST, "--out", str(out))
    assert result.code == 2 and result.err.count("\n") == 1
    assert snapshot(tmp_path) == before


def test_a_marker_that_is_a_link_or_a_folder_is_refused(cli, user_home, tmp_path):
    for kind in ("link", "folder"):
        out = tmp_path / kind
        out.mkdir()
        if kind == "link":
            (out / MARKER).symlink_to(user_home / "victim.txt")
        else:
            (out / MARKER).mkdir()
        before = snapshot(tmp_path)
        assert cli(*FAST, "--out", str(out)).code == 2
        assert snapshot(tmp_path) == before


def test_a_listed_file_that_changed_since_the_run_wrote_it_is_kept(cli, user_home, tmp_path):
    out = tmp_path / "r"
    assert cli(*FAST, "--out", str(out)).code == 1
    (out / "verdict.txt").write_text("my edits\n")
    before = snapshot(out)
    result = cli(*FAST, "--out", str(out))
    assert result.code == 2 and "verdict.txt changed" in result.err
    assert snapshot(out) == before


def test_a_symlinked_subfolder_in_a_report_is_never_followed(cli, user_home, tmp_path):
    out = tmp_path / "r"
    assert cli(*FAST, "--out", str(out), "--plots").code == 1
    audio = out / "audio"
    real = sorted(audio.iterdir())
    victim = tmp_path / "elsewhere"
    victim.mkdir()
    for wav in real:  # the same names, now the user's files behind a link
        (victim / wav.name).write_bytes(wav.read_bytes())
        wav.unlink()
    audio.rmdir()
    audio.symlink_to(victim)
    before = snapshot(tmp_path)
    assert cli(*FAST, "--out", str(out)).code == 2
    assert snapshot(tmp_path) == before


def test_parse_marker_accepts_the_tools_own_and_refuses_odd_paths():
    good = {"path": "audio/x.wav", "size": 4, "sha256": "0" * 64}
    doc = {"tool": "upsampcheck", "files": ["report.json", good]}
    assert [e.path for e in parse_marker(json.dumps(doc))] == ["report.json", "audio/x.wav"]
    for bad in ["/etc/passwd", "..", "a/../b", "C:\\x", "a/" * 9 + "b", "x" * 256]:
        with pytest.raises(Foreign):
            parse_marker(json.dumps({"tool": "upsampcheck", "files": [bad]}))
    with pytest.raises(Foreign):
        parse_marker(json.dumps({"tool": "upsampcheck", "files": ["a", "a"]}))


def test_remove_claimed_deletes_only_unchanged_listed_regular_files(tmp_path, user_home):
    old = tmp_path / "old"
    (old / "audio").mkdir(parents=True)
    (old / "report.json").write_text("{}")
    (old / "audio" / "a.wav").write_bytes(b"RIFF")
    from upsampcheck.outputs.marker import write_marker

    write_marker(old)
    assert {e.path for e in claim(old)} == {"report.json", "audio/a.wav"}
    (old / "late.txt").write_text("written by the user meanwhile\n")
    (old / "report.json").write_text('{"edited": true}')
    assert remove_claimed(old) is False
    assert sorted(p.relative_to(old).as_posix() for p in old.rglob("*")) == [
        "late.txt",
        "report.json",
    ]


def test_what_a_killed_swap_left_is_restored_or_removed_by_the_next_run(cli, user_home, tmp_path):
    out = tmp_path / "r"
    assert cli(*FAST, "--out", str(out), "--seed", "1").code == 1
    earlier = snapshot(out)
    # killed between the two renames: --out gone, the earlier report hidden beside it
    hidden = tmp_path / ".r.upsampcheck-old-999999"
    out.rename(hidden)
    staging = tmp_path / ".r.upsampcheck-999999-abcd1234"
    staging.mkdir()
    (staging / "report.json").write_text("{half")
    assert cli(*FAST, "--out", str(out), "--seed", "-5").code == 2  # refused after recovery
    assert snapshot(out) == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "r"]
    # killed after the second rename: the old copy is removed by the next run
    (tmp_path / ".r.upsampcheck-old-999998").mkdir()
    old = tmp_path / ".r.upsampcheck-old-999998"
    for name, data in earlier.items():
        (old / name).parent.mkdir(parents=True, exist_ok=True)
        (old / name).write_bytes(data)
    assert cli(*FAST, "--out", str(out)).code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "r"]


def test_leftovers_are_found_by_the_tools_own_pattern_only(tmp_path, user_home):
    from upsampcheck.outputs.safe_folder import OutFolder

    for name in [
        ".r.upsampcheck-old-12",
        ".r.upsampcheck-12-abcdefgh",
        ".r.upsampcheck-old-12x",
        ".r.upsampcheck-lock",
        ".rr.upsampcheck-old-12",
        "r.upsampcheck-old-12",
    ]:
        (tmp_path / name).mkdir()
    (tmp_path / ".r.upsampcheck-old-13").symlink_to(user_home)
    found = [p.name for p in OutFolder(tmp_path / "r").leftovers()]
    assert found == [".r.upsampcheck-12-abcdefgh", ".r.upsampcheck-old-12"]


SWAP_THEN_SIGNAL = """
import os, signal, sys, time
from upsampcheck.outputs import safe_folder
real = safe_folder.OutFolder._swap
def slow_swap(self, staging):
    os.kill(os.getpid(), signal.{sig})  # arrives in the middle of the swap
    time.sleep(0.3)
    real(self, staging)
safe_folder.OutFolder._swap = slow_swap
from upsampcheck.cli.main import main
sys.exit(main({args!r}))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_during_the_swap_waits_for_it_and_the_verdict_stands(tmp_path, user_home, sig):
    out = tmp_path / "r"
    args = [*FAST, "--out", str(out)]
    assert subprocess.run([sys.executable, "-m", "upsampcheck", *args]).returncode == 1
    code = textwrap.dedent(SWAP_THEN_SIGNAL).format(sig=sig, args=[*args, "--seed", "3"])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert f"{sig} arrived after the report was complete" in proc.stderr
    assert json.loads((out / "report.json").read_text())["environment"]["seed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "r"]


@pytest.mark.parametrize("where", ["read-only", "under-a-file"])
def test_write_baseline_that_cannot_be_written_is_refused_before_any_work(
    cli, user_home, tmp_path, monkeypatch, where
):
    no_analysis(monkeypatch)
    if where == "read-only":
        if os.geteuid() == 0:
            target = Path("/proc/self/base.json")  # /proc refuses new files even to root
        else:
            locked = tmp_path / "locked"
            locked.mkdir(mode=0o555)
            target = locked / "base.json"
    else:
        (tmp_path / "file.txt").write_text("keep\n")
        target = tmp_path / "file.txt" / "base.json"
    before = snapshot(tmp_path)
    result = cli(*FAST, "--out", str(tmp_path / "r"), "--write-baseline", str(target))
    assert result.code == 2 and result.err.count("\n") == 1
    assert "--write-baseline" in result.err
    assert snapshot(tmp_path) == before


def test_a_baseline_that_fails_to_write_leaves_the_earlier_report_in_place(
    cli, user_home, tmp_path, monkeypatch
):
    out = tmp_path / "r"
    assert cli(*FAST, "--out", str(out)).code == 1
    before = snapshot(tmp_path)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("json.dump", full)
    result = cli(*FAST, "--out", str(out), "--write-baseline", str(tmp_path / "b.json"))
    assert result.code == 2 and "No space left on device" in result.err
    assert snapshot(tmp_path) == before


def test_an_out_name_too_long_for_the_folders_beside_it_is_refused(cli, user_home, tmp_path):
    result = cli(*FAST, "--out", str(tmp_path / ("r" * 256)))
    assert result.code == 2 and "bytes long" in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_a_step_summary_that_is_a_fifo_is_refused_before_any_work(
    cli, user_home, tmp_path, monkeypatch
):
    no_analysis(monkeypatch)
    fifo = tmp_path / "summary"
    os.mkfifo(fifo)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(fifo))
    result = cli(*FAST, "--out", str(tmp_path / "r"))
    assert result.code == 2 and "FIFO" in result.err
    assert not (tmp_path / "r").exists()


def test_the_lock_works_without_fcntl_as_on_windows(tmp_path, monkeypatch):
    """Windows has no ``fcntl``: the lock takes ``msvcrt.locking`` (simulated here)."""
    import builtins
    import types

    from upsampcheck.outputs import safe_folder

    held: set[int] = set()

    def locking(fd, mode, nbytes):
        ino = os.fstat(fd).st_ino
        if ino in held:
            raise OSError(36, "Resource deadlock avoided")
        held.add(ino)

    fake = types.SimpleNamespace(locking=locking, LK_NBLCK=2)
    real_import = builtins.__import__

    def no_fcntl(name, *args, **kwargs):
        if name == "fcntl":
            raise ImportError("No module named 'fcntl'")
        if name == "msvcrt":
            return fake
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fcntl)
    first = safe_folder.OutFolder(tmp_path / "r").check()
    first.lock()
    second = safe_folder.OutFolder(tmp_path / "r").check()
    with pytest.raises(Exception, match="another upsampcheck run"):
        second.lock()
    first.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
