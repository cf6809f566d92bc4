"""The content of metadata.json: configs, names and shapes, the protocol, statistics."""

import json
from datetime import datetime, timezone

from keras import ops

from keras_cvae.export.graphs import prediction_shapes, step_shapes
from keras_cvae.onnx_protocol import (
    CONDITION_COLUMNS,
    IS_CONTEXT,
    NEXT_PREFIX,
    PREDICTION_INPUTS,
    PREDICTION_ONNX,
    PREDICTION_OUTPUT,
    SAVED_MODEL_DIR,
    STATE_PREFIX,
    STEP_ONNX,
    STEP_PROTOCOL,
)
from keras_cvae.run_folder import RunError


def _describe(shapes, dtypes=None):
    """[{name, shape, dtype}] of named tensors, float32 unless `dtypes` says otherwise."""
    return [
        {"name": name, "shape": shape, "dtype": (dtypes or {}).get(name, "float32")}
        for name, shape in shapes.items()
    ]


def build_common_metadata(model, run, export_config, evaluation=None):
    """The entries of metadata.json every task shares; the task adds "prediction" and "step".

    Args:
        model: The exported model.
        run: Its `RunFolder`.
        export_config: The `ExportConfig` used.
        evaluation: The run's eval/metrics.json content, or None.
    """
    info = run.read_info()
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
        "model": model.config.to_dict(),
        "train": info.get("train"),
        "training_data": info.get("data") or "embedded default dataset",
        "batch_size": "dynamic (null in shapes)",
        "evaluation": evaluation,
    }


def build_metadata(model, run, export_config, evaluation=None):
    """The content of metadata.json of an SVG export.

    Args:
        model: The exported `SVG` model.
        run: Its `RunFolder`.
        export_config: The `ExportConfig` used.
        evaluation: The run's eval/metrics.json content, or None.
    """
    config = model.config
    shapes = prediction_shapes(config)
    step_inputs, step_outputs = step_shapes(model)
    metadata = build_common_metadata(model, run, export_config)
    del metadata["evaluation"]  # it stays last
    return {
        **metadata,
        "prediction": {
            "saved_model_signature": "serving_default",
            "inputs": _describe({name: shapes[name] for name in PREDICTION_INPUTS}),
            "outputs": _describe({PREDICTION_OUTPUT: shapes[PREDICTION_OUTPUT]}),
            "context": "frames in [0, 1], RGB, height x width x channels",
            "noise": "standard normal per future frame; zeros give the prior's mean path",
        },
        "step": {
            "inputs": _describe(step_inputs, {IS_CONTEXT: "bool"}),
            "outputs": _describe(step_outputs),
            "state": [
                {"input": name, "output": NEXT_PREFIX + name, "shape": shape, "initial": "zeros"}
                for name, shape in step_inputs.items()
                if name.startswith(STATE_PREFIX)
            ],
            "protocol": list(STEP_PROTOCOL),
        },
        "conditions": {
            "columns": list(CONDITION_COLUMNS),
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
