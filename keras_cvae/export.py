"""Exports a trained SVG run as a SavedModel, two ONNX files and metadata.json.

    saved_models/<name>/
        saved_model/     TF SavedModel, signature "serving_default" = the whole prediction
        model.onnx       the whole prediction (same input and output names)
        step.onnx        one generation step, for streaming (a controller predicting frame by frame)
        metadata.json    configs, names and shapes, the step protocol, condition statistics,
                         training data and the run's evaluation numbers

Whole prediction (SavedModel and model.onnx), batch size B dynamic:

    context     float32 [B, n_past, 64, 64, 3]        frames in [0, 1]
    conditions  float32 [B, n_past + n_future, 7]      raw (4 action + 3 end-effector) per frame
    noise       float32 [B, n_future, z_dim]           standard normal; zeros = the prior's mean path
    -> frames   float32 [B, n_future, 64, 64, 3]       in [0, 1]

The conditions are normalised inside the graphs with the training statistics (also listed
in metadata.json for information): pass raw values. No random op is in any graph; the
noise is an input.

Single step (step.onnx). Inputs: `frame` [B, 64, 64, 3] (the latest frame), `conditions`
[B, 2, 7] (raw c_t-1 and c_t), `noise` [B, z_dim], `is_context` bool [B], and the state
tensors `state_<part>`; outputs: `next_frame` [B, 64, 64, 3] and `next_state_<part>` for
every state input. The state holds the LSTM (h, c) of the predictor (and of the learned
prior) and the encoder skips of the last context frame: a step with `is_context` true
replaces the skips by those of its input frame, otherwise it keeps the carried ones.
To reproduce the whole prediction from context x_0..x_n_past-1 and conditions c_0..:

    state = zeros for every state_<part> input (shapes in metadata.json, batch B)
    for t in 1 .. n_past + n_future - 1:
        frame      = x_t-1 if t <= n_past else the previous step's next_frame
        is_context = t <= n_past
        noise      = zeros if t < n_past else noise[:, t - n_past]
        outputs    = step(frame, conditions = c[:, t-1:t+1], noise, is_context, state)
        state      = the next_state_<part> outputs, fed back as state_<part>
        if t >= n_past: next_frame is predicted frame t (future index t - n_past)
"""

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from keras_cvae.run_folder import RunError, RunFolder

SAVED_MODEL_DIR = "saved_model"
PREDICTION_ONNX = "model.onnx"
STEP_ONNX = "step.onnx"
METADATA_FILE = "metadata.json"
PREDICTION_INPUTS = ("context", "conditions", "noise")
PREDICTION_OUTPUT = "frames"
STEP_PROTOCOL = (
    "state = zeros for every state_<part> input (batch B)",
    "for t in 1 .. n_past + n_future - 1:",
    "    frame = context[:, t-1] if t <= n_past else the previous next_frame",
    "    is_context = (t <= n_past) for every batch row",
    "    noise = zeros if t < n_past else noise[:, t - n_past]",
    "    conditions = raw conditions[:, t-1 : t+1] (rows t-1 and t)",
    "    run step; feed each next_state_<part> output back as state_<part>",
    "    if t >= n_past: next_frame is predicted future frame t - n_past",
)


# ONNX opsets the export accepts: tf2onnx 1.17 writes up to 18, and the model's ops
# (LSTM cells, resize, gather) are not all convertible below 13.
OPSETS = (13, 18)


class ExportError(RuntimeError):
    """An exported file could not be loaded or disagrees with the Keras model."""


@dataclass(frozen=True)
class ExportConfig:
    """What to export and how strictly to check it.

    Args:
        opset: ONNX opset of both ONNX files.
        saved_model: Also write the TF SavedModel.
        check_batch: Batch size of the random inputs used to check every exported file.
        tolerance: Largest absolute difference to the Keras model the checks accept.
        seed: Seed of the check inputs.
    """

    opset: int = 17
    saved_model: bool = True
    check_batch: int = 2
    tolerance: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        low, high = OPSETS
        if not isinstance(self.opset, int) or not low <= self.opset <= high:
            raise ValueError(f"opset (--opset) must be an integer from {low} to {high}, got {self.opset}")
        if not 0 < self.tolerance < float("inf"):
            raise ValueError(f"tolerance (--tolerance) must be a positive number, got {self.tolerance}")
        if not isinstance(self.check_batch, int) or self.check_batch < 1:
            raise ValueError(f"check_batch must be at least 1, got {self.check_batch}")


# ---------------------------------------------------------------------- signatures
def prediction_shapes(config):
    """Input and output shapes of the whole prediction (None = dynamic batch).

    Args:
        config: The `ModelConfig`.
    """
    size, channels = config.image_size, config.channels
    return {
        "context": [None, config.n_past, size, size, channels],
        "conditions": [None, config.sequence_length, config.condition_dim],
        "noise": [None, config.n_future, config.z_dim],
        "frames": [None, config.n_future, size, size, channels],
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
    """Ordered input and output shapes of the step model: ({inputs}, {outputs})."""
    config = model.config
    size, channels = config.image_size, config.channels
    state = state_shapes(model)
    inputs = {
        "frame": [None, size, size, channels],
        "conditions": [None, 2, config.condition_dim],
        "noise": [None, config.z_dim],
        "is_context": [None],
        **{f"state_{name}": shape for name, shape in state.items()},
    }
    outputs = {
        "next_frame": [None, size, size, channels],
        **{f"next_state_{name}": shape for name, shape in state.items()},
    }
    return inputs, outputs


def _specs(shapes, dtypes=None):
    import tensorflow as tf

    dtypes = dtypes or {}
    return [
        tf.TensorSpec(shape, dtypes.get(name, tf.float32), name=name)
        for name, shape in shapes.items()
    ]


def prediction_function(model):
    """The whole prediction as a tf.function with a named signature, returning {"frames"}.

    It calls the model, whose rollout is one symbolic loop over `SVG.step`: the graph
    holds the weights once, which tf2onnx needs for the full-size (svg) model (converting
    a Python-unrolled rollout, a copy of the encoder and decoder per step, took over 17 GB
    of memory; with the loop the whole svg export peaks at 8-9 GB,
    benchmarks/results/export_svg.json).
    """
    import tensorflow as tf

    shapes = prediction_shapes(model.config)
    specs = _specs({name: shapes[name] for name in PREDICTION_INPUTS})

    @tf.function(input_signature=specs, autograph=False)
    def predict(context, conditions, noise):
        inputs = {"context": context, "conditions": conditions, "noise": noise}
        return {PREDICTION_OUTPUT: model(inputs, training=False)}

    return predict


def step_function(model):
    """`SVG.step` as a tf.function; see the module docstring for the protocol."""
    import tensorflow as tf
    from keras import ops

    input_shapes, output_shapes = step_shapes(model)
    state_names = [name for name in input_shapes if name.startswith("state_")]
    recurrent_count = len(model.initial_state(1)["recurrent"])
    specs = _specs(input_shapes, {"is_context": tf.bool})

    @tf.function(input_signature=specs, autograph=False)
    def step(frame, conditions, noise, is_context, *state):
        pair = ops.reshape(model.normalize_conditions(conditions), (-1, 2 * conditions.shape[-1]))
        carried = {"recurrent": tuple(state[:recurrent_count]), "skips": list(state[recurrent_count:])}
        next_frame, _, carried = model.step(
            frame, pair, noise, ops.reshape(is_context, (-1, 1, 1, 1)), carried
        )
        values = [next_frame, *carried["recurrent"], *carried["skips"]]
        return {name: tf.identity(ops.cast(v, "float32")) for name, v in zip(output_shapes, values)}

    if len(state_names) != len(specs) - 4:
        raise ExportError("step signature and state do not match")
    return step


# ---------------------------------------------------------------------- writers
def write_saved_model(model, path):
    """Writes a SavedModel whose "serving_default" signature is the whole prediction.

    Args:
        model: The `SVG` model.
        path: Destination folder (must not exist).
    """
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", prediction_function(model))
    archive.write_out(str(path), verbose=False)


def _convert_to_onnx(function, path, opset):
    """Converts a tf.function with a named input signature to an ONNX file."""
    import onnx
    import tf2onnx

    # Keras ships the numpy-2 compatibility fixes tf2onnx 1.17 still lacks.
    from keras.src.export.tf2onnx_lib import patch_tf2onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # np.object probe inside the patch
        patch_tf2onnx()
    model_proto, _ = tf2onnx.convert.from_function(
        function, input_signature=function.input_signature, opset=opset
    )
    _name_batch_dimension(model_proto)
    onnx.save(model_proto, str(path))


def _name_batch_dimension(model_proto):
    """Calls the dynamic first dimension of every graph input and output "batch"."""
    for value in [*model_proto.graph.input, *model_proto.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"


def write_prediction_onnx(model, path, opset):
    """Writes the whole prediction as ONNX (inputs context/conditions/noise, output frames)."""
    _convert_to_onnx(prediction_function(model), path, opset)


def write_step_onnx(model, path, opset):
    """Writes the single-step streaming model as ONNX (see the module docstring)."""
    _convert_to_onnx(step_function(model), path, opset)


def build_metadata(model, run, export_config, evaluation=None):
    """The content of metadata.json.

    Args:
        model: The exported `SVG` model.
        run: Its `RunFolder`.
        export_config: The `ExportConfig` used.
        evaluation: The run's eval/metrics.json content, or None.
    """
    from keras import ops

    config = model.config
    info = run.read_info()
    shapes = prediction_shapes(config)
    step_inputs, step_outputs = step_shapes(model)
    describe = lambda shapes_by_name, dtypes=None: [  # noqa: E731
        {"name": name, "shape": shape, "dtype": (dtypes or {}).get(name, "float32")}
        for name, shape in shapes_by_name.items()
    ]
    files = {"onnx": PREDICTION_ONNX, "step_onnx": STEP_ONNX}
    if export_config.saved_model:
        files["saved_model"] = SAVED_MODEL_DIR
    return {
        "format": "keras-cvae export 1",
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": str(run.path),
        "preset": info.get("preset"),
        "epochs_done": info.get("epochs_done"),
        "files": files,
        "opset": export_config.opset,
        "model": config.to_dict(),
        "train": info.get("train"),
        "training_data": info.get("data") or "embedded default dataset",
        "batch_size": "dynamic (null in shapes)",
        "prediction": {
            "saved_model_signature": "serving_default",
            "inputs": describe({name: shapes[name] for name in PREDICTION_INPUTS}),
            "outputs": describe({PREDICTION_OUTPUT: shapes[PREDICTION_OUTPUT]}),
            "context": "frames in [0, 1], RGB, height x width x channels",
            "noise": "standard normal per future frame; zeros give the prior's mean path",
        },
        "step": {
            "inputs": describe(step_inputs, {"is_context": "bool"}),
            "outputs": describe(step_outputs),
            "state": [
                {"input": name, "output": f"next_{name}", "shape": shape, "initial": "zeros"}
                for name, shape in step_inputs.items()
                if name.startswith("state_")
            ],
            "protocol": list(STEP_PROTOCOL),
        },
        "conditions": {
            "columns": ["action_0", "action_1", "action_2", "action_3",
                        "endeffector_x", "endeffector_y", "endeffector_z"],
            "normalisation": "inside the graphs: pass raw values; "
            "(conditions - mean) / std with the statistics below",
            "mean": [float(v) for v in ops.convert_to_numpy(model.condition_mean)],
            "std": [float(v) for v in ops.convert_to_numpy(model.condition_std)],
        },
        "evaluation": evaluation,
    }


def read_evaluation(run):
    """The run's eval/metrics.json, or None if it has none.

    Args:
        run: A `RunFolder`.
    """
    path = run.path / "eval" / "metrics.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RunError(f"{path}: not readable JSON ({error})") from None


# ---------------------------------------------------------------------- checks
def check_inputs(config, batch, seed):
    """Random prediction inputs (numpy float32) for parity checks.

    Args:
        config: The `ModelConfig`.
        batch: Batch size.
        seed: NumPy seed.
    """
    rng = np.random.default_rng(seed)
    shapes = prediction_shapes(config)
    return {
        "context": rng.uniform(size=[batch, *shapes["context"][1:]]).astype(np.float32),
        "conditions": rng.normal(size=[batch, *shapes["conditions"][1:]]).astype(np.float32),
        "noise": rng.normal(size=[batch, *shapes["noise"][1:]]).astype(np.float32),
    }


def run_step_onnx(session, inputs, config):
    """Runs the whole prediction by stepping the step model (the documented protocol).

    Args:
        session: An onnxruntime session of step.onnx.
        inputs: Prediction inputs as numpy arrays (context, conditions, noise).
        config: The `ModelConfig`.

    Returns:
        The predicted frames [B, n_future, 64, 64, 3].
    """
    context, conditions, noise = (inputs[name] for name in PREDICTION_INPUTS)
    batch, n_past, horizon = context.shape[0], config.n_past, noise.shape[1]
    state = {
        node.name: np.zeros([batch, *node.shape[1:]], np.float32)
        for node in session.get_inputs()
        if node.name.startswith("state_")
    }
    frame, predictions = context[:, 0], []
    for t in range(1, n_past + horizon):
        feed = {
            "frame": frame,
            "conditions": conditions[:, t - 1 : t + 1],
            "noise": noise[:, t - n_past] if t >= n_past else np.zeros_like(noise[:, 0]),
            "is_context": np.full([batch], t <= n_past),
            **state,
        }
        names = [node.name for node in session.get_outputs()]
        outputs = dict(zip(names, session.run(names, feed)))
        state = {name: outputs[f"next_{name}"] for name in state}
        if t >= n_past:
            predictions.append(outputs["next_frame"])
        frame = context[:, t] if t < n_past else outputs["next_frame"]
    return np.stack(predictions, axis=1)


def _check_close(name, actual, expected, tolerance):
    difference = float(np.max(np.abs(actual - expected)))
    if not difference <= tolerance:
        raise ExportError(f"{name}: differs from the Keras model by {difference:.3g}")
    return difference


def _onnx_session(path):
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors.
        raise ExportError(f"{path}: onnxruntime cannot load it ({error})") from None


def check_export(model, folder, export_config):
    """Loads every exported file in its runtime and compares it to the Keras model.

    Args:
        model: The exported `SVG` model.
        folder: The export folder.
        export_config: The `ExportConfig`.

    Returns:
        {file name: largest absolute difference to the Keras model}.
    """
    from keras import ops

    folder = Path(folder)
    inputs = check_inputs(model.config, export_config.check_batch, export_config.seed)
    expected = ops.convert_to_numpy(model(inputs, training=False))
    tolerance = export_config.tolerance
    session = _onnx_session(folder / PREDICTION_ONNX)
    (frames,) = session.run([PREDICTION_OUTPUT], inputs)
    differences = {PREDICTION_ONNX: _check_close(PREDICTION_ONNX, frames, expected, tolerance)}
    stepped = run_step_onnx(_onnx_session(folder / STEP_ONNX), inputs, model.config)
    differences[STEP_ONNX] = _check_close(STEP_ONNX, stepped, expected, tolerance)
    if (folder / SAVED_MODEL_DIR).is_dir():
        import tensorflow as tf

        serve = tf.saved_model.load(str(folder / SAVED_MODEL_DIR)).signatures["serving_default"]
        frames = serve(**{k: tf.constant(v) for k, v in inputs.items()})[PREDICTION_OUTPUT]
        differences[SAVED_MODEL_DIR] = _check_close(
            SAVED_MODEL_DIR, frames.numpy(), expected, tolerance
        )
    json.loads((folder / METADATA_FILE).read_text())
    return differences


# ---------------------------------------------------------------------- entry point
def export_model(model, run, out_dir, export_config=ExportConfig()):
    """Writes and checks every export of `model` into `out_dir`, atomically.

    Everything is written to a hidden temporary folder next to `out_dir`, checked, and
    only then renamed onto `out_dir` (an existing `out_dir` is replaced).

    Args:
        model: The `SVG` model to export.
        run: The `RunFolder` it comes from (configs, data, evaluation).
        out_dir: Destination folder.
        export_config: An `ExportConfig`.

    Returns:
        {file name: largest absolute difference to the Keras model in the checks}.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    metadata = build_metadata(model, run, export_config, read_evaluation(run))
    temporary = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        if export_config.saved_model:
            write_saved_model(model, temporary / SAVED_MODEL_DIR)
        write_prediction_onnx(model, temporary / PREDICTION_ONNX, export_config.opset)
        write_step_onnx(model, temporary / STEP_ONNX, export_config.opset)
        (temporary / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        differences = check_export(model, temporary, export_config)
        os.chmod(temporary, 0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(temporary, out_dir)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return differences


def export_run(run_dir=None, out_dir=None, export_config=ExportConfig()):
    """Exports a training run (default: the newest under runs/) to saved_models/<run name>.

    Args:
        run_dir: The run folder, or None for the newest run under runs/.
        out_dir: Destination, or None for saved_models/<run folder name>.
        export_config: An `ExportConfig`.

    Returns:
        (destination Path, {file name: largest absolute difference to the Keras model}).

    Raises:
        RunError: Missing run, run.json or model.keras.
        ExportError: `out_dir` cannot be created, or an export disagrees with the model.
    """
    from keras_cvae.paths import why_not_creatable
    from keras_cvae.run_folder import latest_run

    run = RunFolder(Path(run_dir)) if run_dir else latest_run()
    out_dir = Path(out_dir) if out_dir else Path("saved_models") / run.path.name
    reason = why_not_creatable(out_dir.parent)
    if reason is not None:
        raise ExportError(f"{out_dir}: cannot create the output folder ({reason})")
    model = run.load_model()
    return out_dir, export_model(model, run, out_dir, export_config)
