"""Reads the frames of an ONNX prediction and writes its outputs; each task reads its
own conditions (e.g. `keras_cvae.tasks.svg.onnx_files`).

Like `keras_cvae.onnx_inference`, nothing here imports TensorFlow or Keras.

Inputs:
    context frames    PNG files (or a folder of them, natural order), a GIF, or an .npz
                      (array "context", else "frames", else its only array), [T, H, W, 3]
                      uint8 or float in [0, 1]; the first n_past frames are the context.
Outputs (in the output folder):
    predictions.npz   frames [S, n_future, 64, 64, 3] float32, noise, context, conditions
    sample_K.gif      context then predicted frames of sample K
    sample_K/frame_TT.png   predicted frame at time index TT (TT >= n_past)
"""

import re
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from keras_cvae.files import atomic_save
from keras_cvae.visualize import to_uint8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class InferenceError(ValueError):
    """Bad input to ONNX inference; the message is one line naming the file."""


def natural_key(path):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", Path(path).name)]


def _as_unit_float(frames, source):
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) / 255.0
    if not np.issubdtype(frames.dtype, np.floating):
        raise InferenceError(f"{source}: frames must be uint8 or float, got {frames.dtype}")
    if not np.all(np.isfinite(frames)) or frames.min() < 0.0 or frames.max() > 1.0:
        raise InferenceError(f"{source}: float frames must be finite and in [0, 1]")
    return frames.astype(np.float32)


def read_image(path):
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as error:
        raise InferenceError(f"{path}: not a readable image ({error})") from None


def _read_gif(path):
    try:
        with Image.open(path) as image:
            return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(image)])
    except (OSError, UnidentifiedImageError) as error:
        raise InferenceError(f"{path}: not a readable GIF ({error})") from None


def _read_npz(path):
    try:
        with np.load(path) as archive:
            names = list(archive.files)
            for name in ("context", "frames"):
                if name in names:
                    return archive[name]
            if len(names) == 1:
                return archive[names[0]]
    except (OSError, ValueError) as error:
        raise InferenceError(f"{path}: not a readable .npz ({error})") from None
    raise InferenceError(f"{path}: no array named 'context' or 'frames' (has {names})")


def read_context(sources, n_past, image_size=64, channels=3):
    """Reads the context frames: the first `n_past` frames of the sources.

    Args:
        sources: PNG paths, one folder of PNGs, one GIF or one .npz.
        n_past: Context frames the model needs.
        image_size: Height and width the model needs.
        channels: Colour channels the model needs.

    Returns:
        [n_past, image_size, image_size, channels] float32 in [0, 1].
    """
    paths = [Path(s) for s in sources]
    if not paths:
        raise InferenceError("no context frames given")
    for path in paths:
        if not path.exists():
            raise InferenceError(f"{path}: not found")
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        paths = sorted(
            (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key
        )
        if not paths:
            raise InferenceError(f"{folder}: no image files")
    single = paths[0]
    if len(paths) == 1 and single.suffix.lower() == ".npz":
        frames, source = _read_npz(single), single
    elif len(paths) == 1 and single.suffix.lower() == ".gif":
        frames, source = _read_gif(single), single
    else:
        images = [read_image(p) for p in paths[:n_past]]
        for path, image in zip(paths, images):
            if image.shape != (image_size, image_size, channels):
                raise InferenceError(
                    f"{path}: image is {image.shape[1]}x{image.shape[0]}, "
                    f"the model needs {image_size}x{image_size}"
                )
        frames, source = np.stack(images), paths[0] if len(paths) == 1 else paths[0].parent
    if frames.ndim == 5 and frames.shape[0] == 1:
        frames = frames[0]
    if frames.ndim != 4 or frames.shape[1:] != (image_size, image_size, channels):
        raise InferenceError(
            f"{source}: frames have shape {list(frames.shape)}, "
            f"the model needs [T, {image_size}, {image_size}, {channels}]"
        )
    if frames.shape[0] < n_past:
        raise InferenceError(
            f"{source}: {frames.shape[0]} context frame(s), the model needs {n_past}"
        )
    return _as_unit_float(frames[:n_past], source)


def write_predictions(out_dir, context, conditions, noise, frames, fps=4.0):
    """Writes predictions.npz, one GIF per sample (context then prediction) and PNGs.

    Args:
        out_dir: Destination folder.
        context: [n_past, 64, 64, 3] float32.
        conditions: [n_past + n_future, 7] float32 (raw).
        noise: [S, n_future, noise_dim].
        frames: [S, n_future, 64, 64, 3] float32 predictions.
        fps: Frames per second of the GIFs.

    Returns:
        The written paths.
    """
    out_dir = Path(out_dir)
    n_past = context.shape[0]
    saves = {
        out_dir / "predictions.npz": lambda path: np.savez(
            path, frames=frames, noise=noise, context=context, conditions=conditions
        )
    }
    for sample, predicted in enumerate(frames):
        video = to_uint8(np.concatenate([context, predicted], axis=0))
        saves[out_dir / f"sample_{sample}.gif"] = lambda path, video=video: iio.imwrite(
            path, video, extension=".gif", duration=1000.0 / fps, loop=0
        )
        for step, image in enumerate(video[n_past:], start=n_past):
            saves[out_dir / f"sample_{sample}" / f"frame_{step:02d}.png"] = (
                lambda path, image=image: Image.fromarray(image).save(path, format="PNG")
            )
    for path, save in saves.items():
        atomic_save(path, save)
    return list(saves)
