"""Atomic writers: the target is either the old or the new content, never half, and one
mode policy (0644 files, 0755 folders) whatever the umask."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_cvae import files


class Boom(Exception):
    pass


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_temporary_names_are_hidden_and_keep_the_suffixes(tmp_path):
    name = files.temporary_sibling(tmp_path / "epoch-0001.weights.h5")
    assert name.parent == tmp_path and name.name.startswith(".epoch-0001.tmp-")
    assert name.name.endswith(".weights.h5")
    assert files.temporary_sibling(tmp_path / "samples").name.startswith(".samples.tmp-")
    assert files.temporary_sibling(tmp_path / "a.txt") != files.temporary_sibling(tmp_path / "a.txt")


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "run.json"
    files.atomic_write_text(target, "old")
    with pytest.raises(Boom):
        with files.atomic_path(target) as temporary:
            temporary.write_text("half")
            raise Boom
    assert target.read_text() == "old" and listing(tmp_path) == ["run.json"]


def test_modes_do_not_depend_on_the_umask(tmp_path):
    previous = os.umask(0o077)
    try:
        files.atomic_write_text(tmp_path / "a.txt", "x")
        files.atomic_save(tmp_path / "b.bin", lambda path: Path(path).write_bytes(b"x"))
        with files.staged_directory(tmp_path / "out") as staged:
            (staged / "sub").mkdir()
            (staged / "sub" / "c.txt").write_text("x")
    finally:
        os.umask(previous)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.rglob("*")}
    assert modes == {"a.txt": 0o644, "b.bin": 0o644, "out": 0o755, "sub": 0o755, "c.txt": 0o644}


def test_a_staged_directory_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "export"
    with pytest.raises(Boom):
        with files.staged_directory(target) as staged:
            (staged / "model.onnx").write_text("half")
            raise Boom
    assert listing(tmp_path) == []
    with files.staged_directory(target) as staged:
        (staged / "model.onnx").write_text("v1")
    with pytest.raises(FileExistsError):
        with files.staged_directory(target):
            pass
    with files.staged_directory(target, replace=True) as staged:
        (staged / "model.onnx").write_text("v2")
    assert listing(tmp_path) == ["export"] and listing(target) == ["model.onnx"]
    assert (target / "model.onnx").read_text() == "v2"


def test_only_what_dead_processes_left_is_removed(tmp_path):
    target = tmp_path / "dataset"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # a process that has ended
    left = tmp_path / f".dataset.tmp-{dead_pid}-0a0b0c0d"
    (left / "train").mkdir(parents=True)
    running = tmp_path / f".dataset.tmp-{os.getppid()}-01020304"  # our parent still runs
    running.mkdir()
    unrelated = tmp_path / ".other.tmp-1-01020304"
    unrelated.mkdir()
    mine = tmp_path / "dataset-notes.txt"
    mine.write_text("keep")
    assert files.remove_stale_staging(target) == [left]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([running.name, unrelated.name, mine.name])
