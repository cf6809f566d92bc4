"""Batches of the pose task: windows of frames and their pose labels, as a `keras.utils.PyDataset`.

Batches are {"frames": float32 [B, T, 32, 64, 3] in [0, 1], "conditions": float32
[B, T, 32, 64, 3] (the pose labels) in [0, 1]}, the names `SVG`'s batches use.

A split is read into memory once (a few tens of MB) and cut into consecutive windows of T
frames (see `pose_layout`). Training is an infinite stream of passes; pass p visits the
windows in the order `default_rng([seed, p]).permutation(n)` and batch b holds stream
elements [b * B, (b + 1) * B), so a resumed run's stream continues exactly; a process of
several serves its rows of every batch (`data.shards`). Evaluation is one pass in file
order; its last batch may be smaller.
"""

import math
from pathlib import Path
from typing import Optional

import keras
import numpy as np

from keras_cvae.data.errors import DataError
from keras_cvae.data.shards import Shard
from keras_cvae.data.windows import PIXEL_SCALE
from keras_cvae.tasks.pose import layout as pose_layout
from keras_cvae.tasks.pose.embedded import ensure_pose_dataset


def resolve_pose_source(source) -> Path:
    """The dataset root: `source`, or the embedded dance dataset (generated once) for None.

    Raises:
        DataError: `source` is missing or not in the pose layout.
    """
    if source is None:
        return ensure_pose_dataset()
    root = Path(source)
    if not root.is_dir():
        raise DataError(f"{root}: directory not found")
    if not pose_layout.is_pose_root(root):
        raise DataError(f"{root}: not a pose dataset (expected train/train_img/*.png and "
                        "train/train_label/*.png, or the same under val/)")
    return root


def describe_pose_source(source, video_length) -> dict:
    """{"kind": "pose", "path", "splits": {split: videos of `video_length` frames}}.

    Args:
        source: A pose dataset root, or None for the embedded one.
        video_length: Frames per video.
    """
    root = resolve_pose_source(source)
    splits = {}
    for split in pose_layout.SPLITS:
        if pose_layout.split_folders(root, split)[0].is_dir():
            splits[split] = len(list(pose_layout.split_folders(root, split)[0].glob("*.png"))) // video_length
    return {"kind": "pose", "path": str(root), "splits": splits}


class PoseWindows(keras.utils.PyDataset):
    """Batches of pose windows (see the module docstring).

    Args:
        frames: uint8 [windows, T, H, W, 3].
        labels: uint8 [windows, T, H, W, 3].
        batch_size: Windows per batch.
        training: Infinite shuffled stream, or one pass in order.
        seed: Seed of the training order.
        start_batch: Training: index 0 serves this batch of the stream.
        shard: Training: the rows of every batch this process serves; `batch_size` is
            then the global batch.
    """

    def __init__(self, frames, labels, batch_size, training, seed=0, start_batch=0, shard=Shard()):
        super().__init__()
        self.frames, self.labels = frames, labels
        self.batch_size, self.training = int(batch_size), bool(training)
        self.seed, self.start_batch = int(seed), int(start_batch)
        self.shard = shard

    @property
    def num_batches(self) -> Optional[int]:
        """Batches in one pass (evaluation), or None: training never ends."""
        return None if self.training else math.ceil(len(self.frames) / self.batch_size)

    def __len__(self) -> int:
        if self.training:
            raise TypeError("a training PoseWindows is infinite; it has no len()")
        return self.num_batches

    def items(self, batch) -> list:
        """Indices of the windows of batch `batch`."""
        size = len(self.frames)
        if not self.training:
            return list(range(batch * self.batch_size, min((batch + 1) * self.batch_size, size)))
        first = (batch + self.start_batch) * self.batch_size
        rows = self.shard.rows(self.batch_size)
        elements = range(first + rows.start, first + rows.stop)
        orders, items = {}, []
        for element in elements:
            pass_index, position = divmod(element, size)
            if pass_index not in orders:
                orders[pass_index] = np.random.default_rng([self.seed, pass_index]).permutation(size)
            items.append(int(orders[pass_index][position]))
        return items

    def __getitem__(self, batch) -> dict:
        if not self.training and not 0 <= batch < self.num_batches:
            raise IndexError(f"batch {batch} out of range (0..{self.num_batches - 1})")
        items = self.items(batch)
        return {
            "frames": self.frames[items].astype(np.float32) / PIXEL_SCALE,
            "conditions": self.labels[items].astype(np.float32) / PIXEL_SCALE,
        }


def make_pose_dataset(source, split, *, length, batch_size, training, seed=0, start_batch=0,
                      progress=False, shard=Shard()) -> PoseWindows:
    """Windows of `length` frames of a pose split, batched.

    Args:
        source: A pose dataset root, or None for the embedded dance dataset.
        split: "train" or "val".
        length: Frames per window (the training window, or the video length to evaluate).
        batch_size: Windows per batch.
        training: Infinite shuffled stream, or one pass in order.
        seed: Seed of the training order.
        start_batch: Training: where a resumed run's stream starts.
        progress: Show a progress bar while reading the PNGs.
        shard: Training: this process's share of every batch (`data.shards`); `batch_size`
            stays the global batch.

    Raises:
        DataError: Bad folder or file (named), or fewer frames than one window.
    """
    if split not in pose_layout.SPLITS:
        raise DataError(f"split must be one of {', '.join(pose_layout.SPLITS)} for pose data, got {split!r}")
    if int(batch_size) < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}")
    if not shard.whole and not training:
        raise DataError("a shard applies to training streams only")
    shard.local_size(int(batch_size))  # checks that the processes share it evenly
    frames, labels = pose_layout.read_videos(resolve_pose_source(source), split, int(length), progress)
    return PoseWindows(frames, labels, batch_size, training, seed, start_batch, shard)
