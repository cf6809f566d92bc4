"""The pose task's data: the procedural dancer, the lab's folder layout and its batches."""

import json

import numpy as np
import pytest
from PIL import Image

from keras_cvae.data import DataError
from keras_cvae.tasks.pose import dancer
from keras_cvae.tasks.pose import embedded as pose_embedded
from keras_cvae.tasks.pose import layout as pose_layout
from keras_cvae.tasks.pose.pipeline import PoseWindows, make_pose_dataset, resolve_pose_source

SIZES = {"train": (2, 8), "val": (1, 6)}


@pytest.fixture
def pose_dir(tmp_path):
    return pose_embedded.write_dance_dataset(tmp_path / "pose", sizes=SIZES, seed=5)


def test_the_dancer_is_deterministic_and_seeds_differ():
    frames, labels = dancer.render_video([1, 2], 12)
    again, again_labels = dancer.render_video([1, 2], 12)
    other, _ = dancer.render_video([1, 3], 12)
    assert frames.shape == labels.shape == (12, 32, 64, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames, again) and np.array_equal(labels, again_labels)
    assert not np.array_equal(frames, other)
    assert np.mean(np.all(labels == 0, axis=-1)) > 0.8  # a thin skeleton on black
    assert np.abs(np.diff(frames.astype(int), axis=0)).mean() > 0  # it moves


def test_the_layout_reads_back_the_rendered_videos_in_numeric_order(pose_dir):
    frames, labels = pose_layout.read_videos(pose_dir, "train", 8)
    expected = [dancer.render_video([5, 0, video], 8) for video in range(2)]
    assert frames.shape == (2, 8, 32, 64, 3)
    assert np.array_equal(frames, np.stack([f for f, _ in expected]))  # frame10.png after frame9.png
    assert np.array_equal(labels, np.stack([lab for _, lab in expected]))
    chunks, _ = pose_layout.read_videos(pose_dir, "train", 5)  # 16 frames -> 3 videos of 5
    assert chunks.shape[0] == 3 and np.array_equal(chunks[1, 0], frames[0, 5])


@pytest.mark.parametrize("fault", ["missing label", "wrong size", "not a png", "too few frames"])
def test_bad_input_names_the_file(pose_dir, fault):
    images, labels = pose_layout.split_folders(pose_dir, "val")
    expected = {"missing label": (labels / "frame3.png", "file not found"),
                "wrong size": (images / "frame2.png", "image is 64x64, expected 64x32"),
                "not a png": (labels / "frame4.png", "not a readable PNG"),
                "too few frames": (images, "6 frames, fewer than one video of 7")}
    path, message = expected[fault]
    if fault == "missing label":
        path.unlink()
    elif fault == "wrong size":
        Image.new("RGB", (64, 64)).save(path)
    elif fault == "not a png":
        path.write_bytes(b"not an image")
    with pytest.raises(DataError, match=message) as info:
        pose_layout.read_videos(pose_dir, "val", 7 if fault == "too few frames" else 6)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_folder_that_is_not_a_pose_dataset(tmp_path):
    with pytest.raises(DataError, match="not a pose dataset"):
        resolve_pose_source(tmp_path)


def test_training_batches_are_a_seeded_stream_and_evaluation_is_in_order(pose_dir):
    train = make_pose_dataset(pose_dir, "train", length=4, batch_size=3, training=True, seed=1)
    windows = train.frames.shape[0]
    assert windows == 4 and train.num_batches is None
    first_pass = train.items(0) + [train.items(1)[0]]
    assert sorted(first_pass) == list(range(4))  # a pass visits every window once
    assert train.items(5) == PoseWindows(train.frames, train.labels, 3, True, seed=1, start_batch=5).items(0)
    other = PoseWindows(train.frames, train.labels, 3, True, seed=2)
    assert [train.items(b) for b in range(4)] != [other.items(b) for b in range(4)]
    batch = train[0]
    assert batch["frames"].shape == batch["conditions"].shape == (3, 4, 32, 64, 3)
    assert batch["frames"].dtype == np.float32 and 0 <= batch["frames"].min() and batch["frames"].max() <= 1
    val = make_pose_dataset(pose_dir, "val", length=6, batch_size=2, training=False)
    assert len(val) == 1 and np.array_equal(val[0]["frames"][0] * 255, dancer.render_video([5, 1, 0], 6)[0])


def test_the_embedded_dataset_is_built_once(monkeypatch, tmp_path):
    target = tmp_path / "cache" / "pose"
    monkeypatch.setenv(pose_embedded.ENV_VAR, str(target))
    monkeypatch.setattr(pose_embedded, "SIZES", {"train": (1, 4), "val": (1, 3)})
    assert pose_embedded.ensure_pose_dataset(progress=False) == target
    assert json.loads((target / "COMPLETE.json").read_text())["name"] == "pose_v1"
    assert resolve_pose_source(None) == target
    assert len(list((target / "val" / "val_label").glob("*.png"))) == 3
