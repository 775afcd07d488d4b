"""The report folder contract: a user's files are never replaced, a report is written whole or
not at all, two runs never share a folder. Every case builds the user's files in a temporary
home and working folder, runs the tool, and compares every file's bytes afterwards."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest

import upsampcheck.outputs.folder
from upsampcheck.outputs.safe_folder import MARKER, OutFolder, remove_claimed

FAST = ["layer", "--type", "transposed", "--length", "5", "--stride", "4", "--no-plots"]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (hidden ones included) with its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture
def user(tmp_path, monkeypatch):
    """A user's world: HOME with an ``.ssh`` key, a project with sources and a stray
    ``report.json``, the working folder inside it all."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    project = home / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "model.py").write_text("import torch\n")
    (project / "report.json").write_text('{"mine": true}\n')
    (project / "trend.json").write_text("[]\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(project)
    return home


@pytest.mark.parametrize(
    "out",
    [
        "project",  # a folder that merely holds a report.json / trend.json
        "cwd-absolute",
        ".",
        "..",
        "home",
        "home/.ssh",
        "/",
    ],
)
def test_a_folder_the_tool_did_not_write_is_refused_and_kept_byte_for_byte(cli, user, out):
    before = snapshot(user)
    target = {
        "project": str(user / "project"),
        "cwd-absolute": os.getcwd(),
        "home": str(user),
        "home/.ssh": str(user / ".ssh"),
    }.get(out, out)
    result = cli(*FAST, "--out", target)
    assert result.code == 2
    assert result.err.count("\n") == 1 and result.err.startswith("upsampcheck: error: --out")
    assert snapshot(user) == before
    assert sorted(p.name for p in user.iterdir()) == [".ssh", "project"]


def test_an_earlier_report_with_one_unknown_file_is_refused(cli, user, tmp_path):
    out = tmp_path / "r"
    assert cli(*FAST, out=out).code == 1
    (out / "notes.txt").write_text("my notes\n")
    before = snapshot(out)
    result = cli(*FAST, out=out)
    assert result.code == 2 and "notes.txt" in result.err
    assert snapshot(out) == before


def test_an_earlier_report_is_replaced_and_its_marker_lists_every_file(cli, user, tmp_path):
    out = tmp_path / "r"
    assert cli(*FAST, "--seed", "1", out=out).code == 1
    first = json.loads((out / "report.json").read_text())
    assert cli("layer", "--type", "nearest", "--stride", "2", "--length", "0", out=out).code == 0
    second = json.loads((out / "report.json").read_text())
    assert first["subject"]["name"] == "transposed" and second["subject"]["name"] == "nearest"
    marker = json.loads((out / MARKER).read_text())
    on_disk = sorted(
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != MARKER
    )
    assert marker["tool"] == "upsampcheck"
    assert [entry["path"] for entry in marker["files"]] == on_disk
    for entry in marker["files"]:  # each with its size and hash, checked on the next run
        data = (out / entry["path"]).read_bytes()
        assert entry["size"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert {"summary.png", "report.html"} <= set(on_disk)  # the second run drew figures
    assert any(name.startswith("audio/") for name in on_disk)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "r"]  # no staging, no lock


def test_an_empty_folder_may_take_the_report(cli, user, tmp_path):
    (tmp_path / "empty").mkdir()
    assert cli(*FAST, out=tmp_path / "empty").code == 1
    assert (tmp_path / "empty" / "report.json").is_file()


def test_a_symlinked_out_is_refused_and_neither_link_nor_target_changes(cli, user, tmp_path):
    target = tmp_path / "real"
    assert cli(*FAST, out=target).code == 1
    link = tmp_path / "link"
    link.symlink_to(target)
    before = snapshot(target)
    result = cli(*FAST, out=link)
    assert result.code == 2 and "symbolic link" in result.err
    assert link.is_symlink() and snapshot(target) == before


@pytest.mark.parametrize("kind", ["under-a-file", "dangling-link", "unwritable"])
def test_an_impossible_out_exits_2_before_any_analysis(cli, user, tmp_path, monkeypatch, kind):
    def no_analysis(*args, **kwargs):
        raise AssertionError("the analysis ran")

    monkeypatch.setattr("upsampcheck.check.check_stack", no_analysis)
    if kind == "under-a-file":
        (tmp_path / "file.txt").write_text("keep me\n")
        out = tmp_path / "file.txt" / "report"
    elif kind == "dangling-link":
        (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
        out = tmp_path / "gone" / "report"
    else:  # /proc refuses new entries even to root
        out = Path("/proc/upsampcheck-report")
    before = snapshot(tmp_path)
    result = cli(*FAST, out=out)
    assert result.code == 2 and result.err.count("\n") == 1
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "nowhere").exists()


def test_a_full_disk_is_exit_2_with_the_earlier_report_intact(cli, user, tmp_path, monkeypatch):
    out = tmp_path / "r"
    assert cli(*FAST, out=out).code == 1
    before = snapshot(out)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(upsampcheck.outputs.folder, "render_text", full)
    result = cli(*FAST, out=out)
    assert result.code == 2 and "no space left on device" in result.err
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "r"]


def test_missing_parents_are_made_and_removed_again_when_the_run_fails(cli, user, tmp_path):
    out = tmp_path / "a" / "b" / "report"
    assert cli(*FAST, "--seed", "-1", out=out).code == 2
    assert not (tmp_path / "a").exists()
    assert cli(*FAST, out=out).code == 1 and (out / "report.json").is_file()


def test_a_second_run_on_a_locked_out_is_refused(cli, user, tmp_path):
    out = tmp_path / "r"
    holder = OutFolder(out).check()
    holder.lock()
    try:
        result = cli(*FAST, out=out)
    finally:
        holder.release()
    assert result.code == 2 and "another upsampcheck run" in result.err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # lock file gone too
    assert cli(*FAST, out=out).code == 1


def test_files_that_appear_in_an_old_report_during_a_run_are_kept(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "report.json").write_text("{}")
    (old / MARKER).write_text(json.dumps({"tool": "upsampcheck", "files": ["report.json"]}))
    (old / "late.txt").write_text("written by the user meanwhile\n")
    assert remove_claimed(old) is False
    assert sorted(p.name for p in old.iterdir()) == ["late.txt"]


def test_a_forged_marker_that_does_not_list_a_file_still_protects_it(cli, user, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"tool": "upsampcheck", "files": ["report.json"]}))
    (out / "thesis.tex").write_text("\\documentclass{article}\n")
    before = snapshot(out)
    assert cli(*FAST, out=out).code == 2
    assert snapshot(out) == before


def test_write_baseline_never_overwrites_a_file_that_is_no_baseline(cli, user, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# my project\n")
    result = cli(*FAST, "--write-baseline", str(readme), out=tmp_path / "r")
    assert result.code == 2 and "not an upsampcheck baseline" in result.err
    assert readme.read_text() == "# my project\n" and not (tmp_path / "r").exists()
    baseline = tmp_path / "base.json"
    assert cli(*FAST, "--write-baseline", str(baseline), out=tmp_path / "r").code == 1
    first = baseline.read_bytes()
    assert cli(*FAST, "--write-baseline", str(baseline), out=tmp_path / "r").code == 1
    assert baseline.read_bytes() == first  # an earlier baseline is replaced (same numbers)
