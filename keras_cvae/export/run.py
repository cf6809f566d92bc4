"""Exports a run: writes every file into a staged folder, checks it, then publishes it."""

from pathlib import Path

from keras_cvae import tasks
from keras_cvae.export import writers
from keras_cvae.export.checks import check_export
from keras_cvae.export.config import ExportConfig, ExportError
from keras_cvae.export.destination import check_destination
from keras_cvae.export.metadata import build_metadata, read_evaluation
from keras_cvae.files import staged_directory
from keras_cvae.onnx_protocol import METADATA_FILE, PREDICTION_ONNX, SAVED_MODEL_DIR, STEP_ONNX
from keras_cvae.paths import why_not_creatable
from keras_cvae.run_folder import RunFolder, latest_run


def export_model(model, run, out_dir, export_config=ExportConfig()):
    """Writes and checks every export of `model` into `out_dir`, atomically.

    Everything is written to a hidden temporary folder next to `out_dir`, checked, and
    only then renamed onto `out_dir`. An existing `out_dir` is replaced only if it is an
    earlier export (see `check_destination`). The run's task gives the graphs; the
    prediction is traced once, for the SavedModel and model.onnx both.

    Args:
        model: The trained model to export.
        run: The `RunFolder` it comes from (task, configs, data, evaluation).
        out_dir: Destination folder.
        export_config: An `ExportConfig`.

    Returns:
        {file name: largest absolute difference to the Keras model in the checks}.
    """
    check_destination(out_dir)
    task = tasks.task_of(run.read_info())
    graphs = task.export_graphs(model)
    metadata = build_metadata(model, run, export_config, task.name, graphs, read_evaluation(run))
    opset = export_config.opset
    with staged_directory(out_dir, replace=True) as folder:
        if export_config.saved_model:
            writers.write_saved_model(model, folder / SAVED_MODEL_DIR, graphs.predict)
        writers.write_onnx(graphs.predict, folder / PREDICTION_ONNX, opset)
        writers.write_onnx(graphs.step, folder / STEP_ONNX, opset)
        writers.write_metadata(folder / METADATA_FILE, metadata)
        differences = check_export(model, folder, export_config, graphs)
    return differences


def export_run(run_dir=None, out_dir=None, export_config=ExportConfig(), task=None):
    """Exports a training run (default: the newest under runs/) to saved_models/<run name>.

    Args:
        run_dir: The run folder, or None for the newest run under runs/.
        out_dir: Destination, or None for saved_models/<run folder name>.
        export_config: An `ExportConfig`.
        task: The name of the task the run must be, or None for whichever it is.

    Returns:
        (destination Path, {file name: largest absolute difference to the Keras model}).

    Raises:
        RunError: Missing run, run.json or model.keras.
        ExportError: `out_dir` cannot be created, or an export disagrees with the model.
    """
    run = RunFolder(Path(run_dir)) if run_dir else latest_run()
    run_task = tasks.task_of(run.read_info()).name
    if task not in (None, run_task):
        raise ExportError(f"{run.run_file}: a {run_task} run, not a {task} one (--task {task})")
    out_dir = Path(out_dir) if out_dir else Path("saved_models") / run.path.name
    reason = why_not_creatable(out_dir.parent)
    if reason is not None:
        raise ExportError(f"{out_dir}: cannot create the output folder ({reason})")
    check_destination(out_dir)
    return out_dir, export_model(run.load_model(), run, out_dir, export_config)
