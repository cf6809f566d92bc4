"""The graphs an SVG export holds: the whole prediction and the step, with their shapes,
parity-check inputs and metadata.json entries (see `keras_cvae.tasks.svg.onnx_protocol`)."""

import functools

import numpy as np
import tensorflow as tf
from keras import ops

from keras_cvae.export.config import ExportError
from keras_cvae.export.graphs import ExportGraphs, prediction_entry, prediction_function, signature, step_entry
from keras_cvae.onnx_protocol import NEXT_PREFIX, PREDICTION_INPUTS, PREDICTION_OUTPUT, STATE_PREFIX, STEP_OUTPUT
from keras_cvae.tasks.svg.onnx_protocol import CONDITION_COLUMNS, IS_CONTEXT, STEP_INPUTS, STEP_PROTOCOL, run_step_onnx


def prediction_shapes(config):
    """Input and output shapes of the whole prediction (None = dynamic batch).

    Args:
        config: The `SVGConfig`.
    """
    size, channels = config.image_size, config.channels
    input_shapes = (
        [None, config.n_past, size, size, channels],
        [None, config.window_length, config.condition_dim],
        [None, config.n_future, config.noise_dim],
    )
    return {
        **dict(zip(PREDICTION_INPUTS, input_shapes)),
        PREDICTION_OUTPUT: [None, config.n_future, size, size, channels],
    }


def state_shapes(model):
    """Ordered {part name: shape} of the step model's carried state.

    The model's recurrent state (predictor, then learned prior) followed by the encoder
    skips of the last context frame, largest first.

    Args:
        model: The `SVG` model.
    """
    config = model.config
    shapes = {}
    for layer_index in range(config.predictor_layers):
        shapes[f"predictor_h{layer_index}"] = [None, config.rnn_size]
        shapes[f"predictor_c{layer_index}"] = [None, config.rnn_size]
    if config.prior == "learned":
        for layer_index in range(config.prior_layers):
            shapes[f"prior_h{layer_index}"] = [None, config.rnn_size]
            shapes[f"prior_c{layer_index}"] = [None, config.rnn_size]
    skip_shapes = model.encoder.skip_shapes(config.image_size)
    for shape in skip_shapes:
        shapes[f"skip{shape[0]}"] = [None, *shape]
    if len(model.initial_state(1)["recurrent"]) != len(shapes) - len(skip_shapes):
        raise ExportError("the model's recurrent state does not match its config")
    return shapes


def step_shapes(model):
    """Ordered input and output shapes of the step model: ({inputs}, {outputs}).

    Args:
        model: The `SVG` model.
    """
    config = model.config
    size, channels = config.image_size, config.channels
    state = {STATE_PREFIX + name: shape for name, shape in state_shapes(model).items()}
    step_input_shapes = (
        [None, size, size, channels],
        [None, 2, config.condition_dim],
        [None, config.noise_dim],
        [None],
    )
    inputs = {**dict(zip(STEP_INPUTS, step_input_shapes)), **state}
    outputs = {
        STEP_OUTPUT: [None, size, size, channels],
        **{NEXT_PREFIX + name: shape for name, shape in state.items()},
    }
    return inputs, outputs


def step_function(model):
    """`SVG.step` as a tf.function; see `keras_cvae.onnx_protocol` for the protocol.

    Args:
        model: The `SVG` model.
    """
    input_shapes, output_shapes = step_shapes(model)
    state_names = [name for name in input_shapes if name.startswith(STATE_PREFIX)]
    recurrent_count = len(model.initial_state(1)["recurrent"])
    specs = signature(input_shapes, {IS_CONTEXT: tf.bool})

    @tf.function(input_signature=specs, autograph=False)
    def step(frame, conditions, noise, is_context, *state):
        pair = ops.reshape(model.normalize_conditions(conditions), (-1, 2 * conditions.shape[-1]))
        carried = {"recurrent": tuple(state[:recurrent_count]), "skips": list(state[recurrent_count:])}
        next_frame, _, carried = model.step(
            frame, pair, noise, ops.reshape(is_context, (-1, 1, 1, 1)), carried
        )
        values = [next_frame, *carried["recurrent"], *carried["skips"]]
        return {name: tf.identity(ops.cast(v, "float32")) for name, v in zip(output_shapes, values)}

    if len(state_names) != len(specs) - len(STEP_INPUTS):
        raise ExportError("step signature and state do not match")
    return step


def check_inputs(config, batch, seed):
    """Random prediction inputs (numpy float32) for parity checks.

    Args:
        config: The `SVGConfig`.
        batch: Batch size.
        seed: NumPy seed.
    """
    rng = np.random.default_rng(seed)
    context, conditions, noise = (prediction_shapes(config)[name] for name in PREDICTION_INPUTS)
    values = (
        rng.uniform(size=[batch, *context[1:]]),
        rng.normal(size=[batch, *conditions[1:]]),
        rng.normal(size=[batch, *noise[1:]]),
    )
    return {name: value.astype(np.float32) for name, value in zip(PREDICTION_INPUTS, values)}


def metadata_entries(model):
    """The SVG entries of metadata.json: the prediction, the step and the conditions.

    Args:
        model: The `SVG` model.
    """
    shapes = prediction_shapes(model.config)
    step_inputs, step_outputs = step_shapes(model)
    return {
        "prediction": prediction_entry(
            shapes,
            context="frames in [0, 1], RGB, height x width x channels",
            noise="standard normal per future frame; zeros give the prior's mean path",
        ),
        "step": step_entry(step_inputs, step_outputs, STEP_PROTOCOL, {IS_CONTEXT: "bool"}),
        "conditions": {
            "columns": list(CONDITION_COLUMNS),
            "normalisation": "inside the graphs: pass raw values; "
            "(conditions - mean) / std with the statistics below",
            "mean": [float(v) for v in ops.convert_to_numpy(model.condition_mean)],
            "std": [float(v) for v in ops.convert_to_numpy(model.condition_std)],
        },
    }


def export_graphs(model):
    """The `ExportGraphs` of an `SVG` model.

    The prediction calls the model, whose rollout is one symbolic loop over `SVG.step`: the
    graph holds the weights once, which tf2onnx needs for the full-size (svg) model
    (converting a Python-unrolled rollout, a copy of the encoder and decoder per step, took
    over 17 GB of memory; with the loop the whole svg export peaks at 8-9 GB,
    benchmarks/results/export_svg.json).

    Args:
        model: The `SVG` model.
    """
    return ExportGraphs(
        predict=prediction_function(model, prediction_shapes(model.config)),
        step=step_function(model),
        check_inputs=functools.partial(check_inputs, model.config),
        run_step_onnx=functools.partial(run_step_onnx, config=model.config),
        metadata=metadata_entries(model),
    )

