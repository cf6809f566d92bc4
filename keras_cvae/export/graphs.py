"""`ExportGraphs`, what a task exports, and the signed prediction function every task uses."""

from dataclasses import dataclass
from typing import Callable

import tensorflow as tf

from keras_cvae.onnx_protocol import NEXT_PREFIX, PREDICTION_INPUTS, PREDICTION_OUTPUT, STATE_PREFIX


@dataclass(frozen=True)
class ExportGraphs:
    """A trained model's exported graphs, and how to check them against it.

    Args:
        predict: The whole prediction: a tf.function with a named input signature
            (`PREDICTION_INPUTS`) returning {"frames"}; the SavedModel and model.onnx.
        step: One generation step: a tf.function with a named input signature; step.onnx.
        check_inputs: (batch, seed) -> random prediction inputs {name: float32 array}.
        run_step_onnx: (onnxruntime session of step.onnx, prediction inputs) -> the frames
            the task's step protocol gives, to compare with the whole prediction.
        metadata: The task's entries of metadata.json ("prediction", "step", ...).
    """

    predict: Callable
    step: Callable
    check_inputs: Callable
    run_step_onnx: Callable
    metadata: dict


def signature(shapes, dtypes=None):
    """`tf.TensorSpec`s of named tensors, float32 unless `dtypes` says otherwise.

    Args:
        shapes: {name: shape}, None for the dynamic batch.
        dtypes: {name: tf dtype} of the tensors that are not float32.
    """
    dtypes = dtypes or {}
    return [tf.TensorSpec(shape, dtypes.get(name, tf.float32), name=name) for name, shape in shapes.items()]


def prediction_function(model, shapes):
    """The model's whole prediction as a tf.function with a named signature, returning {"frames"}.

    Args:
        model: A model called on {"context", "conditions", "noise"}.
        shapes: {name: shape} of (at least) the prediction inputs.
    """

    @tf.function(input_signature=signature({name: shapes[name] for name in PREDICTION_INPUTS}), autograph=False)
    def predict(context, conditions, noise):
        inputs = dict(zip(PREDICTION_INPUTS, (context, conditions, noise)))
        return {PREDICTION_OUTPUT: model(inputs, training=False)}

    return predict


def prediction_entry(shapes, **notes):
    """metadata.json's "prediction": the signature's inputs and output and `notes` on them.

    Args:
        shapes: {name: shape} of the prediction's inputs and output.
        **notes: What each input holds, by name.
    """
    return {
        "saved_model_signature": "serving_default",
        "inputs": describe({name: shapes[name] for name in PREDICTION_INPUTS}),
        "outputs": describe({PREDICTION_OUTPUT: shapes[PREDICTION_OUTPUT]}),
        **notes,
    }


def step_entry(inputs, outputs, protocol, dtypes=None):
    """metadata.json's "step": its inputs and outputs, its carried state and its protocol.

    Args:
        inputs: {name: shape} of the step's inputs, the state's (`STATE_PREFIX`) included.
        outputs: {name: shape} of its outputs.
        protocol: The task's step protocol, lines of text.
        dtypes: {name: dtype name} of the inputs that are not float32.
    """
    return {
        "inputs": describe(inputs, dtypes),
        "outputs": describe(outputs),
        "state": [{"input": name, "output": NEXT_PREFIX + name, "shape": shape, "initial": "zeros"}
                  for name, shape in inputs.items() if name.startswith(STATE_PREFIX)],
        "protocol": list(protocol),
    }


def describe(shapes, dtypes=None):
    """metadata.json's [{name, shape, dtype}] of named tensors, float32 unless `dtypes` says
    otherwise.

    Args:
        shapes: {name: shape}.
        dtypes: {name: dtype name} of the tensors that are not float32.
    """
    return [{"name": name, "shape": shape, "dtype": (dtypes or {}).get(name, "float32")}
            for name, shape in shapes.items()]
