"""Pose-task inference with an exported step.onnx: a first frame plus a folder of pose PNGs.

Nothing here imports TensorFlow or Keras. The stateless step model (see
`keras_cvae.tasks.pose.onnx_protocol.STEP_PROTOCOL`) rolls out as many frames as there are labels after the
first, whatever length the whole-rollout model.onnx was exported with.
"""

from pathlib import Path

import numpy as np
import onnxruntime

from keras_cvae.onnx_files import IMAGE_SUFFIXES, InferenceError, natural_key, read_image, write_predictions
from keras_cvae.tasks.pose.onnx_protocol import run_step_onnx


def read_pose_images(sources, height, width, what):
    """Images of `height` x `width` from PNG paths or one folder of them (natural order).

    Args:
        sources: Image paths, or one folder.
        height: Height the model needs.
        width: Width the model needs.
        what: What the images are, for messages ("first frame", "pose labels").

    Returns:
        float32 [N, height, width, 3] in [0, 1].
    """
    paths = [Path(s) for s in sources]
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        paths = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
        if not paths:
            raise InferenceError(f"{folder}: no image files ({what})")
    images = []
    for path in paths:
        if not path.is_file():
            raise InferenceError(f"{path}: not found ({what})")
        image = read_image(path)
        if image.shape[:2] != (height, width):
            raise InferenceError(f"{path}: image is {image.shape[1]}x{image.shape[0]}, the model needs "
                                 f"{width}x{height} (width x height)")
        images.append(image)
    return np.stack(images).astype(np.float32) / np.float32(255.0)


def predict_files(config, metadata):
    """Rolls out `config.samples` videos from a first frame and pose labels, and writes them.

    `config.context` is the first frame (its first image is used); `config.conditions` the
    pose labels p_0..p_K-1 (p_0, the first frame's, is not used): K - 1 frames are predicted.

    Args:
        config: A `PredictConfig`.
        metadata: The export's metadata.json content ("task": "pose").

    Returns:
        (frames [S, K - 1, H, W, 3] float32, list of written paths).
    """
    model = metadata["model"]
    height, width, latent = int(model["height"]), int(model["width"]), int(model["latent_channels"])
    step_path = Path(config.model_dir) / metadata["files"]["step_onnx"]
    if not step_path.is_file():
        raise InferenceError(f"{step_path}: missing")
    first = read_pose_images(config.context, height, width, "first frame")[:1]
    labels = read_pose_images(config.conditions, height, width, "pose labels")
    if labels.shape[0] < 2:
        raise InferenceError(f"{config.conditions[0]}: {labels.shape[0]} pose label(s); give the first "
                             "frame's label and at least one more")
    try:
        session = onnxruntime.InferenceSession(str(step_path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors.
        raise InferenceError(f"{step_path}: not an ONNX model onnxruntime can load ({error})") from None
    steps = labels.shape[0] - 1
    rng = np.random.default_rng(config.seed)
    noise = rng.standard_normal((config.samples, steps, height, width, latent)).astype(np.float32)
    frames = run_step_onnx(session, np.repeat(first, config.samples, axis=0),
                           np.repeat(labels[None, 1:], config.samples, axis=0), noise)
    written = write_predictions(config.out_dir, first, labels, noise, frames, config.fps)
    return frames, written
