"""SVG inference with an exported model.onnx from files: context frames and condition CSVs.

Nothing here imports TensorFlow or Keras.

Conditions: one CSV of 7 columns (4 action + 3 end-effector), or the lab pair actions.csv
(4 columns) + endeffector_positions.csv (3 columns), or a folder holding that pair;
header-less, one row per frame, raw values (the model normalises them); the first
n_past + n_future rows are used.
"""

from pathlib import Path

import numpy as np
import onnxruntime

from keras_cvae.onnx_files import InferenceError, read_context, write_predictions
from keras_cvae.onnx_inference import read_metadata
from keras_cvae.onnx_protocol import METADATA_FILE, PREDICTION_INPUTS, PREDICTION_OUTPUT
from keras_cvae.tasks.svg.onnx_protocol import ACTION_COLUMNS, ENDEFFECTOR_COLUMNS

ACTIONS_CSV = "actions.csv"
ENDEFFECTOR_CSV = "endeffector_positions.csv"


def read_csv(path, columns):
    """Reads a header-less CSV of `columns` floats per row as float32 [rows, columns].

    Args:
        path: CSV file.
        columns: Expected number of columns.
    """
    path = Path(path)
    if not path.is_file():
        raise InferenceError(f"{path}: file not found")
    rows = []
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != columns:
            raise InferenceError(
                f"{path}: row {index}: {len(fields)} columns, expected {columns}"
            )
        try:
            rows.append([float(f) for f in fields])
        except ValueError:
            raise InferenceError(f"{path}: row {index}: not a number in {line.strip()!r}") from None
    values = np.asarray(rows, np.float32).reshape(-1, columns)
    if not np.all(np.isfinite(values)):
        raise InferenceError(f"{path}: non-finite value")
    return values


def read_conditions(sources, rows, condition_dim=7):
    """Reads the raw per-frame conditions: the first `rows` rows.

    Args:
        sources: One 7-column CSV, the pair (actions.csv, endeffector_positions.csv), or
            one folder holding that pair.
        rows: Rows the model needs (n_past + n_future).
        condition_dim: Values per row the model needs.

    Returns:
        [rows, condition_dim] float32.
    """
    paths = [Path(s) for s in sources]
    if len(paths) == 1 and paths[0].is_dir():
        paths = [paths[0] / ACTIONS_CSV, paths[0] / ENDEFFECTOR_CSV]
    if len(paths) == 1:
        parts = [read_csv(paths[0], condition_dim)]
    elif len(paths) == 2:
        if len(ACTION_COLUMNS) + len(ENDEFFECTOR_COLUMNS) != condition_dim:
            raise InferenceError(f"the model needs {condition_dim} condition values per frame")
        parts = [
            read_csv(paths[0], len(ACTION_COLUMNS)),
            read_csv(paths[1], len(ENDEFFECTOR_COLUMNS)),
        ]
    else:
        raise InferenceError(
            "conditions: give one 7-column CSV, or actions.csv and endeffector_positions.csv"
        )
    for path, part in zip(paths, parts):
        if part.shape[0] < rows:
            raise InferenceError(
                f"{path}: {part.shape[0]} condition rows, the model needs {rows} "
                "(n_past + n_future frames)"
            )
    return np.concatenate([part[:rows] for part in parts], axis=1)


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


def predict_files(config, metadata):
    """Reads the inputs, predicts `config.samples` futures with onnxruntime, writes them.

    Args:
        config: A `PredictConfig`.
        metadata: The export's metadata.json content.

    Returns:
        (frames [S, n_future, 64, 64, 3] float32, list of written paths).
    """
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
