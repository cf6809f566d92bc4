"""Parity checks: every exported file, loaded in its runtime, against the Keras model."""

import json
from pathlib import Path

import numpy as np
import onnxruntime
import tensorflow as tf
from keras import ops

from keras_cvae.export.config import ExportError
from keras_cvae.onnx_protocol import METADATA_FILE, PREDICTION_ONNX, PREDICTION_OUTPUT, SAVED_MODEL_DIR, STEP_ONNX


def check_close(name, actual, expected, tolerance):
    difference = float(np.max(np.abs(actual - expected)))
    if not difference <= tolerance:
        raise ExportError(f"{name}: differs from the Keras model by {difference:.3g}")
    return difference


def onnx_session(path):
    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors.
        raise ExportError(f"{path}: onnxruntime cannot load it ({error})") from None


def check_export(model, folder, export_config, graphs):
    """Loads every exported file in its runtime and compares it to the Keras model.

    Args:
        model: The exported model.
        folder: The export folder.
        export_config: The `ExportConfig`.
        graphs: The model's `ExportGraphs` (its check inputs and step protocol).

    Returns:
        {file name: largest absolute difference to the Keras model}.
    """
    folder = Path(folder)
    inputs = graphs.check_inputs(export_config.check_batch, export_config.seed)
    expected = ops.convert_to_numpy(model(inputs, training=False))
    tolerance = export_config.tolerance
    session = onnx_session(folder / PREDICTION_ONNX)
    (frames,) = session.run([PREDICTION_OUTPUT], inputs)
    differences = {PREDICTION_ONNX: check_close(PREDICTION_ONNX, frames, expected, tolerance)}
    stepped = graphs.run_step_onnx(onnx_session(folder / STEP_ONNX), inputs)
    differences[STEP_ONNX] = check_close(STEP_ONNX, stepped, expected, tolerance)
    if (folder / SAVED_MODEL_DIR).is_dir():
        serve = tf.saved_model.load(str(folder / SAVED_MODEL_DIR)).signatures["serving_default"]
        frames = serve(**{k: tf.constant(v) for k, v in inputs.items()})[PREDICTION_OUTPUT]
        differences[SAVED_MODEL_DIR] = check_close(
            SAVED_MODEL_DIR, frames.numpy(), expected, tolerance
        )
    json.loads((folder / METADATA_FILE).read_text())
    return differences
