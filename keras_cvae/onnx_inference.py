"""Video prediction from an exported model with onnxruntime, numpy, pillow and imageio only.

Nothing here imports TensorFlow or Keras (a test checks it), so a folder written by
`scripts/export.py` can be used on a machine that has only
`pip install onnxruntime numpy pillow imageio`. The accepted input files and the written
outputs are described in `keras_cvae.onnx_files`.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime

from keras_cvae.onnx_files import InferenceError, read_conditions, read_context, write_predictions
from keras_cvae.onnx_protocol import METADATA_FILE, PREDICTION_INPUTS, PREDICTION_OUTPUT
from keras_cvae.paths import why_not_creatable
from keras_cvae.tasks.pose.onnx_files import predict_pose_files


@dataclass(frozen=True)
class PredictConfig:
    """One prediction request of `predict_files`.

    Args:
        model_dir: Folder written by the export (metadata.json, model.onnx).
        context: Context sources: PNG paths, one folder of PNGs, one GIF or one .npz
            (pose exports: the first frame's PNG).
        conditions: One 7-column CSV, the actions/end-effector CSV pair, or their folder
            (pose exports: the pose-label PNGs of every frame, or their folder).
        out_dir: Folder receiving predictions.npz, the GIFs and the PNGs.
        samples: Number of futures drawn (one noise draw each).
        seed: Seed of the noise.
        fps: Frames per second of the GIFs.
    """

    model_dir: str
    context: tuple
    conditions: tuple
    out_dir: str = "predictions"
    samples: int = 1
    seed: int = 0
    fps: float = 4.0

    def __post_init__(self):
        if not isinstance(self.samples, int) or self.samples < 1:
            raise InferenceError(f"samples (--samples) must be at least 1, got {self.samples}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InferenceError(f"seed (--seed) must be at least 0, got {self.seed}")
        if not self.fps > 0 or self.fps == float("inf"):
            raise InferenceError(f"fps (--fps) must be a positive number, got {self.fps}")


def read_metadata(model_dir) -> dict:
    """An export folder's metadata.json content.

    Raises:
        InferenceError: Missing or unreadable file.
    """
    path = Path(model_dir) / METADATA_FILE
    if not path.is_file():
        raise InferenceError(f"{path}: missing; is {model_dir} an export folder?")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InferenceError(f"{path}: not export metadata ({error!r})") from None


class ExportedModel:
    """An exported prediction model (model.onnx + metadata.json) run by onnxruntime.

    Args:
        model_dir: The export folder.
        metadata: Its metadata.json content, if already read (see `read_metadata`).
    """

    def __init__(self, model_dir, metadata=None):
        model_dir = Path(model_dir)
        self.metadata = read_metadata(model_dir) if metadata is None else metadata
        try:
            config = self.metadata["model"]
            self.onnx_path = model_dir / self.metadata["files"]["onnx"]
        except (KeyError, TypeError) as error:
            raise InferenceError(f"{model_dir / METADATA_FILE}: not export metadata ({error!r})") from None
        self.n_past, self.n_future = int(config["n_past"]), int(config["n_future"])
        self.image_size = int(config["image_size"])
        self.channels, self.condition_dim = int(config["channels"]), int(config["condition_dim"])
        if not self.onnx_path.is_file():
            raise InferenceError(f"{self.onnx_path}: missing")
        try:
            self.session = onnxruntime.InferenceSession(
                str(self.onnx_path), providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own untyped errors.
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise InferenceError(
                f"{self.onnx_path}: not an ONNX model onnxruntime can load ({first_line})"
            ) from None
        # Read from the graph, not the config: hierarchical latents make it longer than z_dim.
        noise_inputs = [node for node in self.session.get_inputs() if node.name == PREDICTION_INPUTS[2]]
        if not noise_inputs or not isinstance(noise_inputs[0].shape[-1], int):
            raise InferenceError(f"{self.onnx_path}: has no noise input of a fixed length")
        self.noise_dim = noise_inputs[0].shape[-1]

    @property
    def window_length(self):
        return self.n_past + self.n_future

    def predict(self, context, conditions, noise):
        """Predicts the future frames.

        Args:
            context: [B, n_past, 64, 64, 3] float32 in [0, 1].
            conditions: [B, n_past + n_future, 7] raw float32.
            noise: [B, n_future, noise_dim] float32 standard normal (zeros: the mean path).

        Returns:
            [B, n_future, 64, 64, 3] float32 in [0, 1].
        """
        values = (context, conditions, noise)
        feed = {name: np.asarray(value, np.float32) for name, value in zip(PREDICTION_INPUTS, values)}
        (frames,) = self.session.run([PREDICTION_OUTPUT], feed)
        return frames


def draw_noise(samples, n_future, noise_dim, seed):
    """Standard-normal noise [samples, n_future, noise_dim] float32 from a NumPy seed.

    Args:
        samples: Futures to draw.
        n_future: Predicted frames per future.
        noise_dim: Length of the model's latent per step.
        seed: NumPy seed.
    """
    rng = np.random.default_rng(seed)
    return rng.standard_normal((samples, n_future, noise_dim)).astype(np.float32)


def conditions_kind(sources):
    """The task whose inputs `--conditions` names: "bair" (CSV files, or a folder holding
    them), "pose" (PNG files, or a folder of PNGs), or None when it cannot tell (the file
    readers then say what is wrong).

    Args:
        sources: The paths given as conditions.
    """
    names = []
    for source in map(Path, sources):
        names += [p.name for p in source.iterdir()] if source.is_dir() else [source.name]
    suffixes = {Path(name).suffix.lower() for name in names}
    if ".csv" in suffixes:
        return "bair"
    if suffixes == {".png"}:
        return "pose"
    return None


def predict_files(config):
    """Reads the inputs, predicts `config.samples` futures with onnxruntime, writes them.

    Args:
        config: A `PredictConfig`.

    Returns:
        (frames [S, n_future, 64, 64, 3] float32, list of written paths).
    """
    reason = why_not_creatable(config.out_dir)
    if reason is not None:
        raise InferenceError(f"{config.out_dir}: cannot create the output folder ({reason})")
    metadata = read_metadata(config.model_dir)
    task = metadata.get("task", "bair")
    given = conditions_kind(config.conditions)
    if given is not None and given != task:
        wanted = ("a first frame and pose-label PNGs" if task == "pose" else
                  "context frames and actions.csv + endeffector_positions.csv (or one 7-column CSV)")
        raise InferenceError(f"{config.model_dir}: a {task} export, which takes {wanted}; the conditions "
                             f"given ({config.conditions[0]}) are the inputs of a {given} export")
    if task == "pose":
        return predict_pose_files(config, metadata, config.model_dir)
    model = ExportedModel(config.model_dir, metadata)
    context = read_context(config.context, model.n_past, model.image_size, model.channels)
    conditions = read_conditions(config.conditions, model.window_length, model.condition_dim)
    noise = draw_noise(config.samples, model.n_future, model.noise_dim, config.seed)
    frames = model.predict(
        np.repeat(context[None], config.samples, axis=0),
        np.repeat(conditions[None], config.samples, axis=0),
        noise,
    )
    written = write_predictions(config.out_dir, context, conditions, noise, frames, config.fps)
    return frames, written
