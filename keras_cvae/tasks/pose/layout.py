"""Reads and writes the pose lab's folder layout of frames and pose-label images.

    <root>/train/train_img/frame0.png ...      frames, RGB 64 wide x 32 high
    <root>/train/train_label/frame0.png ...    the pose label of the frame of the same name
    <root>/val/val_img/..., <root>/val/val_label/...

Frames are ordered by the number in their names; a split is cut into consecutive videos
of a fixed number of frames (a remainder shorter than one video is left out), as the lab
does (630-frame videos for validation, 16-frame training windows).
"""

from pathlib import Path

import numpy as np

from keras_cvae.data.errors import DataError
from keras_cvae.data.lab_layout import natural_key

SPLITS = ("train", "val")
HEIGHT, WIDTH = 32, 64


def split_folders(root, split) -> tuple:
    """(frame folder, label folder) of a split: <root>/<split>/<split>_img and _label."""
    base = Path(root) / split
    return base / f"{split}_img", base / f"{split}_label"


def is_pose_root(path) -> bool:
    """True if `path` has the frame folder of a train or val split."""
    return any(split_folders(path, split)[0].is_dir() for split in SPLITS)


def list_frames(root, split) -> list:
    """[(frame path, label path)] of a split, ordered by the numbers in the names.

    Raises:
        DataError: A folder is missing or holds no PNG, or a frame has no label.
    """
    images, labels = split_folders(root, split)
    for folder in (images, labels):
        if not folder.is_dir():
            raise DataError(f"{folder}: directory not found")
    frames = sorted(images.glob("*.png"), key=natural_key)
    if not frames:
        raise DataError(f"{images}: no PNG frames")
    pairs = [(frame, labels / frame.name) for frame in frames]
    for frame, label in pairs:
        if not label.is_file():
            raise DataError(f"{label}: file not found (the pose label of {frame})")
    return pairs


def read_image(path, height=HEIGHT, width=WIDTH) -> np.ndarray:
    """Reads an RGB PNG of `height` x `width` as uint8 [height, width, 3].

    Raises:
        DataError: The file is not a readable image, or its size differs.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"), np.uint8)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable PNG ({error})") from None
    if pixels.shape[:2] != (height, width):
        raise DataError(f"{path}: image is {pixels.shape[1]}x{pixels.shape[0]}, expected {width}x{height} "
                        "(width x height)")
    return pixels


def read_videos(root, split, video_length, progress=False) -> tuple:
    """Every whole video of a split: (frames, labels), uint8 [videos, video_length, 32, 64, 3].

    Args:
        root: Dataset root.
        split: "train" or "val".
        video_length: Frames per video.
        progress: Show a progress bar while reading.

    Raises:
        DataError: Missing folder or label, unreadable or wrongly sized PNG, or fewer frames
            than one video; the message names the file.
    """
    pairs = list_frames(root, split)
    videos = len(pairs) // video_length
    if videos == 0:
        raise DataError(f"{split_folders(root, split)[0]}: {len(pairs)} frames, fewer than one "
                        f"video of {video_length}")
    pairs = pairs[: videos * video_length]
    if progress:
        from tqdm import tqdm

        pairs = tqdm(pairs, unit="frame", desc=f"reading {split}")
    frames, labels = [], []
    for frame, label in pairs:
        frames.append(read_image(frame))
        labels.append(read_image(label))
    shape = (videos, video_length, HEIGHT, WIDTH, 3)
    return np.stack(frames).reshape(shape), np.stack(labels).reshape(shape)


def write_video(root, split, first_index, frames, labels):
    """Writes one video's frames and labels as frame<first_index + t>.png into a split.

    Meant for a folder being built (see `files.staged_directory`), so files are written
    in place.

    Args:
        root: Dataset root.
        split: "train" or "val".
        first_index: Number in the name of the video's first frame.
        frames: uint8 [T, 32, 64, 3].
        labels: uint8 [T, 32, 64, 3].
    """
    from PIL import Image

    for folder, images in zip(split_folders(root, split), (frames, labels)):
        folder.mkdir(parents=True, exist_ok=True)
        for offset, image in enumerate(images):
            Image.fromarray(image, mode="RGB").save(folder / f"frame{first_index + offset}.png", compress_level=1)

