"""The graphs a pose export holds: the whole rollout and the stateless step, with their
shapes, parity-check inputs and metadata.json entries (see
`keras_cvae.tasks.pose.onnx_protocol`)."""

import functools

import numpy as np
import tensorflow as tf

from keras_cvae.export.graphs import ExportGraphs, prediction_entry, prediction_function, signature, step_entry
from keras_cvae.onnx_protocol import PREDICTION_INPUTS, PREDICTION_OUTPUT, STEP_OUTPUT
from keras_cvae.tasks.pose.onnx_protocol import STEP_INPUTS, STEP_PROTOCOL, run_step_onnx


def pose_shapes(config):
    """({prediction name: shape}, {step name: shape}) of a pose export (None = dynamic batch).

    Args:
        config: The `PoseModelConfig`; its `video_length` is the exported rollout's length.
    """
    frame, latent, length = list(config.frame_shape), list(config.latent_shape), config.video_length
    prediction = dict(zip(PREDICTION_INPUTS, ([None, 1, *frame], [None, length, *frame],
                                              [None, length - 1, *latent])))
    prediction[PREDICTION_OUTPUT] = [None, length - 1, *frame]
    step = dict(zip(STEP_INPUTS, ([None, *frame], [None, *frame], [None, *latent])))
    step[STEP_OUTPUT] = [None, *frame]
    return prediction, step


def step_function(model):
    """`PoseCVAE.step` as a tf.function with a named signature, returning {"next_frame"}."""
    _, step_shapes = pose_shapes(model.config)

    @tf.function(input_signature=signature({name: step_shapes[name] for name in STEP_INPUTS}), autograph=False)
    def step(frame, conditions, noise):
        return {STEP_OUTPUT: tf.identity(model.step(frame, conditions, noise))}

    return step


def check_inputs(config, batch, seed):
    """Random prediction inputs (NumPy float32) for the parity checks."""
    rng = np.random.default_rng(seed)
    shapes, _ = pose_shapes(config)
    draw = {"context": rng.uniform, "conditions": rng.uniform, "noise": rng.normal}
    return {name: draw[name](size=[batch, *shapes[name][1:]]).astype(np.float32) for name in PREDICTION_INPUTS}


def step_rollout(session, inputs):
    """The whole prediction by stepping a pose step.onnx from the prediction inputs."""
    return run_step_onnx(session, inputs["context"][:, 0], inputs["conditions"][:, 1:], inputs["noise"])


def metadata_entries(config):
    """The pose entries of metadata.json: the prediction and the step."""
    prediction_shapes, step_shapes = pose_shapes(config)
    notes = {
        "context": "the first frame x_0 in [0, 1], RGB, height x width x channels",
        "conditions": "pose-label images p_0..p_L-1 in [0, 1] (p_0 is not used)",
        "noise": "z_1..z_L-1, standard normal (the prior is N(0, I))",
    }
    step_inputs = {name: step_shapes[name] for name in STEP_INPUTS}
    step = step_entry(step_inputs, {STEP_OUTPUT: step_shapes[STEP_OUTPUT]}, STEP_PROTOCOL)
    return {"prediction": prediction_entry(prediction_shapes, **notes), "step": step}


def export_graphs(model):
    """The `ExportGraphs` of a `PoseCVAE`."""
    prediction_shapes, _ = pose_shapes(model.config)
    return ExportGraphs(
        predict=prediction_function(model, prediction_shapes),
        step=step_function(model),
        check_inputs=functools.partial(check_inputs, model.config),
        run_step_onnx=step_rollout,
        metadata=metadata_entries(model.config),
    )
