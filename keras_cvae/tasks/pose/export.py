"""Exports a pose run: SavedModel, whole-rollout and single-step ONNX, metadata.json, checked.

The files, names and shapes are those of an SVG export (`keras_cvae.onnx_protocol`), with
pose-label images as the conditions and a stateless step.
"""

import numpy as np
import tensorflow as tf
from keras import ops

from keras_cvae.export import writers
from keras_cvae.export.checks import check_close, onnx_session
from keras_cvae.export.destination import check_destination
from keras_cvae.export.metadata import build_common_metadata
from keras_cvae.files import staged_directory
from keras_cvae.onnx_protocol import (METADATA_FILE, POSE_STEP_INPUTS, POSE_STEP_PROTOCOL, PREDICTION_INPUTS,
                                      PREDICTION_ONNX, PREDICTION_OUTPUT, SAVED_MODEL_DIR, STEP_ONNX, STEP_OUTPUT,
                                      run_pose_step_onnx)


def pose_shapes(config):
    """({prediction name: shape}, {step name: shape}) of a pose export (None = dynamic batch).

    Args:
        config: The `PoseModelConfig`; its `video_length` is the exported rollout's length.
    """
    frame, latent, length = list(config.frame_shape), list(config.latent_shape), config.video_length
    prediction = dict(zip(PREDICTION_INPUTS, ([None, 1, *frame], [None, length, *frame],
                                              [None, length - 1, *latent])))
    prediction[PREDICTION_OUTPUT] = [None, length - 1, *frame]
    step = dict(zip(POSE_STEP_INPUTS, ([None, *frame], [None, *frame], [None, *latent])))
    step[STEP_OUTPUT] = [None, *frame]
    return prediction, step


def _signature(shapes, names):
    return [tf.TensorSpec(shapes[name], tf.float32, name=name) for name in names]


def pose_functions(model):
    """(whole rollout, single step) of `model` as signed tf.functions returning dicts."""
    prediction_shapes, step_shapes = pose_shapes(model.config)

    @tf.function(input_signature=_signature(prediction_shapes, PREDICTION_INPUTS), autograph=False)
    def predict(context, conditions, noise):
        inputs = dict(zip(PREDICTION_INPUTS, (context, conditions, noise)))
        return {PREDICTION_OUTPUT: model(inputs, training=False)}

    @tf.function(input_signature=_signature(step_shapes, POSE_STEP_INPUTS), autograph=False)
    def step(frame, conditions, noise):
        return {STEP_OUTPUT: tf.identity(model.step(frame, conditions, noise))}

    return predict, step


def pose_check_inputs(config, batch, seed):
    """Random prediction inputs (NumPy float32) for the parity checks."""
    rng = np.random.default_rng(seed)
    shapes, _ = pose_shapes(config)
    draw = {"context": rng.uniform, "conditions": rng.uniform, "noise": rng.normal}
    return {name: draw[name](size=[batch, *shapes[name][1:]]).astype(np.float32) for name in PREDICTION_INPUTS}


def check_pose_export(model, folder, export_config):
    """Every exported file in its runtime against the Keras model: {file: largest difference}."""
    inputs = pose_check_inputs(model.config, export_config.check_batch, export_config.seed)
    expected = ops.convert_to_numpy(model(inputs, training=False))
    tolerance = export_config.tolerance
    (frames,) = onnx_session(folder / PREDICTION_ONNX).run([PREDICTION_OUTPUT], inputs)
    differences = {PREDICTION_ONNX: check_close(PREDICTION_ONNX, frames, expected, tolerance)}
    stepped = run_pose_step_onnx(onnx_session(folder / STEP_ONNX), inputs["context"][:, 0],
                                 inputs["conditions"][:, 1:], inputs["noise"])
    differences[STEP_ONNX] = check_close(STEP_ONNX, stepped, expected, tolerance)
    if (folder / SAVED_MODEL_DIR).is_dir():
        serve = tf.saved_model.load(str(folder / SAVED_MODEL_DIR)).signatures["serving_default"]
        frames = serve(**{name: tf.constant(value) for name, value in inputs.items()})[PREDICTION_OUTPUT]
        differences[SAVED_MODEL_DIR] = check_close(SAVED_MODEL_DIR, frames.numpy(), expected, tolerance)
    return differences


def pose_metadata(model, run, export_config, evaluation):
    """metadata.json of a pose export."""
    prediction_shapes, step_shapes = pose_shapes(model.config)
    metadata = build_common_metadata(model, run, export_config, evaluation)
    metadata["task"] = "pose"
    metadata["prediction"] = {
        "saved_model_signature": "serving_default",
        "inputs": [_tensor(name, prediction_shapes[name]) for name in PREDICTION_INPUTS],
        "outputs": [_tensor(PREDICTION_OUTPUT, prediction_shapes[PREDICTION_OUTPUT])],
        "context": "the first frame x_0 in [0, 1], RGB, height x width x channels",
        "conditions": "pose-label images p_0..p_L-1 in [0, 1] (p_0 is not used)",
        "noise": "z_1..z_L-1, standard normal (the prior is N(0, I))",
    }
    metadata["step"] = {
        "inputs": [_tensor(name, step_shapes[name]) for name in POSE_STEP_INPUTS],
        "outputs": [_tensor(STEP_OUTPUT, step_shapes[STEP_OUTPUT])],
        "state": [],
        "protocol": list(POSE_STEP_PROTOCOL),
    }
    return metadata


def _tensor(name, shape):
    return {"name": name, "shape": shape, "dtype": "float32"}


def export_pose_model(model, run, out_dir, export_config, evaluation=None):
    """Writes and checks every export of a pose model into `out_dir`, atomically.

    Args:
        model: The `PoseCVAE`.
        run: Its `RunFolder`.
        out_dir: Destination folder (an earlier export there is replaced once the new one
            is complete and checked; anything else there is refused, see `check_destination`).
        export_config: An `ExportConfig`.
        evaluation: The run's eval/metrics.json content, or None.

    Returns:
        {file name: largest absolute difference to the Keras model in the checks}.
    """
    check_destination(out_dir)
    predict, step = pose_functions(model)
    metadata = pose_metadata(model, run, export_config, evaluation)
    with staged_directory(out_dir, replace=True) as folder:
        if export_config.saved_model:
            writers.write_saved_model(model, folder / SAVED_MODEL_DIR, predict)
        writers.write_onnx(predict, folder / PREDICTION_ONNX, export_config.opset)
        writers.write_onnx(step, folder / STEP_ONNX, export_config.opset)
        writers.write_metadata(folder / METADATA_FILE, metadata)
        return check_pose_export(model, folder, export_config)
