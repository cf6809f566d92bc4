"""The embedded default dataset: location, build once, reuse, marker written last."""

import json
from pathlib import Path

import pytest

from keras_cvae.data import DataError, describe_source, embedded, make_dataset


def test_default_data_dir_env_and_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_CVAE_DATA", str(tmp_path / "mine"))
    assert embedded.default_data_dir() == tmp_path / "mine"
    monkeypatch.delenv("KERAS_CVAE_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert embedded.default_data_dir() == tmp_path / "xdg" / "keras_cvae" / "pushing_v1"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert embedded.default_data_dir() == Path.home() / ".cache" / "keras_cvae" / "pushing_v1"


def test_ensure_builds_once_then_reuses(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_CVAE_DATA", str(tmp_path / "default"))
    tiny = embedded.EmbeddedDataset("pushing", "pushing_v1", n_train=3, n_test=1)  # stand-in sizes
    monkeypatch.setattr(embedded, "embedded_datasets", lambda: {"pushing": tiny})
    path = embedded.ensure_embedded_dataset(progress=False, workers=1)
    assert path == tmp_path / "default" and embedded.is_complete(path)
    assert [p.name for p in tmp_path.iterdir()] == ["default"]  # the temp build dir is gone
    stamp = (path / "train" / "traj_0_to_2.tfrecords").stat().st_mtime_ns
    assert embedded.ensure_embedded_dataset(progress=False) == path
    assert (path / "train" / "traj_0_to_2.tfrecords").stat().st_mtime_ns == stamp
    assert describe_source(None)["splits"]["train"] == 3
    assert next(iter(make_dataset(None, "test", batch_size=1, training=False)))["frames"].shape[0] == 1


def test_incomplete_build_is_not_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_CVAE_DATA", str(tmp_path / "default"))
    (tmp_path / "default" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="not a complete pushing_v1 build"):
        embedded.ensure_embedded_dataset(progress=False)


def _fake_writer(write):
    def write_generated_dataset(out_dir, **kwargs):
        write(Path(out_dir))
        return Path(out_dir)

    return write_generated_dataset


def test_an_empty_target_folder_is_filled(monkeypatch, tmp_path):
    target = tmp_path / "default"
    target.mkdir()
    monkeypatch.setenv("KERAS_CVAE_DATA", str(target))
    monkeypatch.setattr(embedded, "write_generated_dataset", _fake_writer(lambda out: (out / "x").write_text("x")))
    assert embedded.ensure_embedded_dataset(progress=False) == target and embedded.is_complete(target)
    assert sorted(p.name for p in target.iterdir()) == [embedded.MARKER, "x"]


def test_a_build_another_process_finished_first_is_kept(monkeypatch, tmp_path):
    target = tmp_path / "default"
    monkeypatch.setenv("KERAS_CVAE_DATA", str(target))

    def build_while_another_process_finishes(out):
        (out / "mine").write_text("mine")
        target.mkdir()
        (target / "theirs").write_text("theirs")
        (target / embedded.MARKER).write_text(json.dumps(embedded.embedded_datasets()["pushing"].marker))

    monkeypatch.setattr(embedded, "write_generated_dataset", _fake_writer(build_while_another_process_finishes))
    assert embedded.ensure_embedded_dataset(progress=False) == target
    assert sorted(p.name for p in target.iterdir()) == [embedded.MARKER, "theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["default"]  # our copy is gone
