"""Crash-safe outputs: the target is either the old file or the complete new one."""

from __future__ import annotations

import os
import stat

import pytest

from hetnpu.atomic import atomic_open, atomic_write_text


def test_new_file_gets_the_umask_mode_not_mkstemps_0600(tmp_path) -> None:
    old = os.umask(0o022)
    os.umask(old)
    path = tmp_path / "out.json"
    atomic_write_text(path, "{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~old
    assert path.read_text() == "{}"


def test_replacing_keeps_the_old_files_mode(tmp_path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    path.chmod(0o640)
    atomic_write_text(path, "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text() == "new"


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write("half of the new")
        raise RuntimeError("writer died")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
