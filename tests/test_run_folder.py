"""The run folder's records: which files count as checkpoints, pruning, temporaries, the lock."""

import dataclasses
import warnings
from pathlib import Path

import pytest

from keras_cvae.run_folder import LOCK_FILE, RunError, RunFolder
from keras_cvae.tasks.svg.config import get_preset
from keras_cvae.tasks.svg.model import SVG


def write_checkpoint(run, epoch, step=0):
    checkpoint = run.checkpoint(epoch, step)
    run.write_checkpoint(checkpoint, lambda path: Path(path).write_text("weights"),
                         {"epoch": epoch, "step": step})
    return checkpoint


def names(run):
    return [c.name for c in run.checkpoints()]


def test_only_complete_checkpoints_count_in_position_order(tmp_path):
    run = RunFolder(tmp_path)
    for epoch, step in ((2, 0), (1, 0), (1, 5), (10, 0)):
        write_checkpoint(run, epoch, step)
    folder = run.checkpoint_dir
    (folder / ".tmp-123-epoch-0011.weights.h5").write_text("half")  # killed while saving
    (folder / ".epoch-0011.json.x8f").write_text("{")
    (folder / "epoch-0012.weights.h5").write_text("weights")  # killed before its state
    (folder / "epoch-0013.json").write_text("{}")  # weights lost
    (folder / "old-epoch-0014.json").write_text("{}")
    assert names(run) == ["epoch-0001", "epoch-0001-step-000005", "epoch-0002", "epoch-0010"]
    assert run.checkpoints()[1].read_state() == {"epoch": 1, "step": 5}


def test_pruning_keeps_the_newest_epochs_and_only_a_newer_backup(tmp_path):
    run = RunFolder(tmp_path)
    for epoch, step in ((1, 0), (1, 3), (2, 0), (2, 2), (2, 4), (3, 0), (3, 1), (3, 2)):
        write_checkpoint(run, epoch, step)
    run.prune_checkpoints(keep=2)
    assert names(run) == ["epoch-0002", "epoch-0003", "epoch-0003-step-000002"]
    write_checkpoint(run, 4)
    run.prune_checkpoints(keep=2)
    assert names(run) == ["epoch-0003", "epoch-0004"]
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == [
        "epoch-0003.json", "epoch-0003.weights.h5", "epoch-0004.json", "epoch-0004.weights.h5"]


def test_log_rows_come_from_the_history(tmp_path):
    run = RunFolder(tmp_path)
    run.write_log({"loss": [0.5, 0.25], "kl_anneal": [0.0, 1.0]})
    assert run.log_file.read_text() == "epoch,kl_anneal,loss\n1,0.0,0.5\n2,1.0,0.25\n"
    assert run.log_file.stat().st_mode & 0o777 == 0o644


def test_temporaries_are_removed_and_everything_else_kept(tmp_path):
    run = RunFolder(tmp_path)
    write_checkpoint(run, 1)
    run.samples_dir.mkdir()
    leftovers = [tmp_path / ".tmp-9-model.keras", tmp_path / ".curves.abc.tmp.png",
                 run.checkpoint_dir / ".tmp-9-epoch-0002.weights.h5", run.samples_dir / ".epoch-0002.gif.x"]
    kept = [tmp_path / LOCK_FILE, tmp_path / "log.csv", run.samples_dir / "epoch-0001.gif"]
    for path in leftovers + kept:
        path.write_text("x")
    run.remove_temporaries()
    assert [p.exists() for p in leftovers] == [False] * len(leftovers)
    assert [p.exists() for p in kept] == [True] * len(kept)
    assert names(run) == ["epoch-0001"]


def test_the_lock_is_exclusive_and_names_its_holder(tmp_path):
    run = RunFolder(tmp_path / "run")
    with run.lock():
        with pytest.raises(RunError, match=r"in use by another training process \(pid \d+\)"):
            with run.lock():
                pass
    with run.lock():  # released with the first holder
        pass
    assert not run.path.exists()  # it never became a run: left as it was found


def test_a_truncated_model_file_is_named_as_such(tmp_path):
    run = RunFolder(tmp_path)
    run.write_info({"model": get_preset("tiny").model.to_dict()})
    run.model_file.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(RunError, match=r"model.keras: not a complete .keras archive"):
        run.load_model()


def test_a_checkpoint_of_another_architecture_is_named(tmp_path):
    from keras_cvae.training import _load_checkpoint

    run = RunFolder(tmp_path)
    other = SVG(dataclasses.replace(get_preset("tiny").model, g_dim=8))
    checkpoint = run.checkpoint(1)
    run.write_checkpoint(checkpoint, other.save_weights, {"epoch": 1})
    model = SVG(get_preset("tiny").model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RunError, match=rf"{checkpoint.weights_path}: cannot be loaded into this run's model") as error:
            _load_checkpoint(model, checkpoint)
    assert len(str(error.value).splitlines()) == 1 and "another architecture" in str(error.value)
    assert [str(w.message) for w in caught if "load" in str(w.message).lower()] == []  # Keras's kept back


def test_a_folder_that_cannot_be_written_is_named_in_one_line(tmp_path, monkeypatch):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    real_open = open

    def read_only(path, *args, **kwargs):
        if str(path).endswith(LOCK_FILE):
            raise OSError(30, "Read-only file system")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", read_only)
    with pytest.raises(RunError, match=rf"{run.path}: cannot be written \(Read-only file system\)"):
        with run.lock():
            pass
