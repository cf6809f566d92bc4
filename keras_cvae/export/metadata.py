"""The content of metadata.json: the task, configs, names and shapes, the protocol, the run."""

import json
from datetime import datetime, timezone

from keras_cvae.onnx_protocol import PREDICTION_ONNX, SAVED_MODEL_DIR, STEP_ONNX
from keras_cvae.run_folder import RunError


def build_metadata(model, run, export_config, task, graphs, evaluation=None):
    """The content of metadata.json.

    Args:
        model: The exported model.
        run: Its `RunFolder`.
        export_config: The `ExportConfig` used.
        task: The name of the run's task.
        graphs: The model's `ExportGraphs` (its entries: "prediction", "step", ...).
        evaluation: The run's eval/metrics.json content, or None.
    """
    info = run.read_info()
    files = {"onnx": PREDICTION_ONNX, "step_onnx": STEP_ONNX}
    if export_config.saved_model:
        files["saved_model"] = SAVED_MODEL_DIR
    return {
        "format": "keras-cvae export 1",
        "task": task,
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
        **graphs.metadata,
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
