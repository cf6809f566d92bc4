"""`evaluate_run`: a run folder evaluated end to end, its report and files written to eval/."""

import dataclasses
import time
from pathlib import Path

from keras_cvae import tasks
from keras_cvae.evaluation.outputs import (check_destination, destination_lock, predictions_path, save_predictions,
                                           write_metrics, write_pictures)
from keras_cvae.evaluation.protocol import EvalConfig, EvaluationError
from keras_cvae.evaluation.report import build_report, format_table
from keras_cvae.evaluation.scoring import evaluate_model
from keras_cvae.files import staged_directory
from keras_cvae.paths import why_not_creatable
from keras_cvae.run_folder import RunFolder, latest_run


def evaluate_run(config: EvalConfig):
    """Evaluates a run folder and writes metrics.json, plots, GIFs and optional predictions.

    Args:
        config: An `EvalConfig`.

    Returns:
        The report dict written to metrics.json, plus "table" (the Markdown table with its
        protocol paragraph) and "files" (paths written).

    Raises:
        RunError: Missing run, run.json or model.keras.
        DataError: Missing or malformed data.
        EvaluationError: Horizon or context do not fit the sequences, or the data does not
            fit the model.
    """
    started = time.perf_counter()
    if config.save_predictions is not None:
        predictions_path(config.save_predictions)  # a bad path fails now, not after the evaluation
    run = RunFolder(Path(config.run)) if config.run is not None else latest_run(config.runs_root)
    info = run.read_info()
    task = tasks.task_of(info)
    if config.task not in (None, task.name):
        raise EvaluationError(f"{run.run_file}: a {task.name} run, not a {config.task} one (--task {config.task})")
    config = dataclasses.replace(config, split=config.split or task.default_split,
                                 batch_size=config.batch_size or task.default_eval_batch)
    model_config = task.model_config(info)
    n_past, horizon = task.protocol(model_config, config.n_past, config.horizon)
    out = Path(config.out) if config.out is not None else run.path / "eval"
    problem = why_not_creatable(out)
    if problem:  # found now, not after the evaluation
        raise EvaluationError(f"{out}: cannot be written ({problem})"
                              + ("; pass --out to write the evaluation elsewhere" if config.out is None else ""))
    check_destination(out)
    with destination_lock(out):
        report, files = _evaluate(config, run, info, task, model_config, (n_past, horizon), out, started)
    return {**report, "table": format_table(report), "files": files}


def _evaluate(config, run, info, task, model_config, protocol, out, started):
    """The evaluation proper, its files written to a staging folder that then replaces
    `out` in one step (`out` never mixes two evaluations; a kill leaves the old one):
    (report, written paths)."""
    n_past, horizon = protocol
    model = run.load_model()
    source = config.data if config.data is not None else info.get("data")
    data = task.describe(source, model_config)
    where = f"{data['path']} ({config.split} split)"
    available = data["splits"].get(config.split)
    target = min(filter(None, (available, config.max_sequences)), default=None)
    dataset = task.evaluation_data(source, config.split, n_past, horizon, config.batch_size)
    with task.data_errors(source):
        result = evaluate_model(
            model,
            dataset,
            n_past=n_past,
            horizon=horizon,
            samples=config.samples,
            seed=config.seed,
            batch_size=config.batch_size,
            max_sequences=config.max_sequences,
            keep_sequences=config.gif_sequences,
            keep_all=config.save_predictions is not None,
            jit_compile=config.jit_compile,
            where=where,
            progress_target=target,
            progress=config.progress,
        )
    report = build_report(config, result, run=run, info=info, model_config=model_config, data=data)
    report["protocol"].update({"task": task.name, **dict(task.protocol_notes)})
    files = []
    if config.save_predictions is not None:
        files.append(str(save_predictions(config.save_predictions, result)))
    report["time"] = {
        "rollout_seconds": result.rollout_seconds,
        "sequences_per_second": result.sequences / result.rollout_seconds,
        "total_seconds": time.perf_counter() - started,
    }
    with staged_directory(out, replace=True) as folder:
        write_metrics(folder, report)
        written = write_pictures(folder, result, report, config.gif_sequences)
    files = [str(out / "metrics.json"), *(str(out / Path(path).name) for path in written), *files]
    return report, files
