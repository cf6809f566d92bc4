"""The pose task's default dataset: procedural dance videos (`dancer`) cached on disk.

Location: `$KERAS_CVAE_POSE_DATA` if set, else `<cache>/keras_cvae/pose_v1` (see
`embedded.cache_root`); built in a temporary sibling and renamed into place like the
pushing dataset (`embedded.ensure_cached`).
"""

import os
from pathlib import Path

from keras_cvae.data.embedded import cache_root, ensure_cached
from keras_cvae.tasks.pose import dancer
from keras_cvae.tasks.pose import layout as pose_layout

DATASET_NAME = "pose_v1"
ENV_VAR = "KERAS_CVAE_POSE_DATA"
# Training videos hold a whole number of 16-frame (and 8- and 4-frame) windows, so no
# training window spans two dances; validation videos are the lab's 630 frames.
SIZES = {"train": (8, 640), "val": (2, 630)}
SEED = 0


def default_pose_dir() -> Path:
    """Where the default pose dataset lives (see the module docstring)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return cache_root() / DATASET_NAME


def write_dance_dataset(root, sizes=None, seed=SEED, progress=False):
    """Writes dance videos in the lab's layout; video v of split s is seeded by (seed, s, v).

    Args:
        root: Dataset root (created).
        sizes: {split: (videos, frames per video)}; default `SIZES`.
        seed: Seed of the whole dataset.
        progress: Show a progress bar.

    Returns:
        `root` as a Path.
    """
    sizes = sizes or SIZES
    jobs = [(split, video) for split in sizes for video in range(sizes[split][0])]
    if progress:
        from tqdm import tqdm

        jobs = tqdm(jobs, unit="video", desc="rendering dances")
    for split, video in jobs:
        length = sizes[split][1]
        frames, labels = dancer.render_video([seed, pose_layout.SPLITS.index(split), video], length)
        pose_layout.write_video(root, split, video * length, frames, labels)
    return Path(root)


def ensure_pose_dataset(progress=True) -> Path:
    """Returns the default pose dataset's folder, generating it first if needed.

    Raises:
        DataError: The folder holds something that is not a complete build.
    """
    target = default_pose_dir()
    marker = {"name": DATASET_NAME, "sizes": {k: list(v) for k, v in SIZES.items()}, "seed": SEED}

    def write(building):
        if progress:
            print(f"Generating the default pose dataset into {target} (once) ...")
        write_dance_dataset(building, progress=progress)

    return ensure_cached(target, marker, write, f"set {ENV_VAR} to another directory")
