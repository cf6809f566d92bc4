"""The files of an evaluation: metrics.json, the predictions .npz, the metric plot, GIFs and strips."""

import contextlib
import json
import re
from pathlib import Path

import numpy as np

from keras_cvae import plots, visualize
from keras_cvae.evaluation.protocol import EvaluationError
from keras_cvae.evaluation.report import series_label, series_scores
from keras_cvae.files import atomic_save, atomic_write_text, claim_lock
from keras_cvae.paths import why_not_creatable

MAX_DRAWN_SAMPLES = 5  # samples side by side in a GIF or strip, so it stays readable
# The names an evaluation folder holds: what `write_metrics` and `write_pictures` write.
EVALUATION_FILES = re.compile(r"metrics\.json|per_frame_metrics\.png|sequence-\d+(-strip\.png|\.gif)")


def check_destination(out):
    """Refuses an `--out` that is neither new, empty, nor an earlier evaluation folder.

    Args:
        out: The evaluation folder.

    Raises:
        EvaluationError: `out` is a file, or a folder holding anything but an evaluation's files.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EvaluationError(f"{out}: is a file; --out takes a folder")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if not EVALUATION_FILES.fullmatch(p.name))
        if foreign:
            raise EvaluationError(
                f"{out}: not an evaluation folder (it holds {', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); choose a new --out: an evaluation replaces "
                "its folder")


@contextlib.contextmanager
def destination_lock(out):
    """Holds `out` for one evaluation: a second one into the same folder is refused at once.

    The lock is a hidden file beside `out` (`.<name>.lock`), removed at the end; the
    operating system drops the lock when the process ends, so a kill never leaves it held.

    Args:
        out: The evaluation folder.

    Raises:
        EvaluationError: Another evaluation is writing `out`.
    """
    out = Path(out)
    created = [folder for folder in (out.parent, *out.parent.parents) if not folder.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = out.parent / f".{out.name}.lock"
    with open(lock, "a+") as stream:
        owner = claim_lock(stream)
        if owner is not None:
            raise EvaluationError(f"{out}: another evaluation is writing it (pid {owner}); wait for it or "
                                  "choose another --out")
        try:
            yield
        finally:  # nothing of the lock is left, nor the folders made for it if nothing else came
            lock.unlink(missing_ok=True)
            for folder in created:
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()


def predictions_path(path) -> Path:
    """The file `--save-predictions PATH` writes: PATH, with ".npz" added if it has no such
    suffix (as NumPy names it). Checked before an evaluation, not after it.

    Args:
        path: The path given.

    Raises:
        EvaluationError: It names a folder, or a place no file can be written.
    """
    path = Path(path)
    if not path.is_dir() and path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    if path.is_dir():
        raise EvaluationError(f"{path}: is a folder; --save-predictions takes a file, "
                              f"e.g. {path / 'predictions.npz'}")
    problem = why_not_creatable(path.parent)
    if problem:
        raise EvaluationError(f"{path}: cannot be written ({problem}) (--save-predictions)")
    return path


def write_metrics(out, report):
    """Writes the report to `<out>/metrics.json` (atomically, valid JSON: NaN as null) and returns that path.

    Args:
        out: Output folder.
        report: The report dict.
    """
    path = Path(out) / "metrics.json"
    atomic_write_text(path, json.dumps(_finite_or_null(report), indent=2, allow_nan=False))
    return path


def _finite_or_null(value):
    """`value` with NaN and infinities as None: JSON has no NaN (a model that diverged
    scores NaN), and readers other than Python's refuse the bare `NaN` token."""
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value


def save_predictions(path, result):
    """Writes the kept sequences' predictions and ground truth to an .npz (atomically).

    Keys: "predictions" uint8 [samples, sequences, horizon, 64, 64, 3], "ground_truth"
    uint8 [sequences, n_past + horizon, 64, 64, 3], "sequence_indices", "n_past",
    "horizon", "pixel_format" (how to get [0, 1] floats back). The reported scores were
    computed on float predictions; recomputing them from these uint8 frames differs by
    the 8-bit rounding only (far below 0.01 dB).

    Args:
        path: Destination .npz file (see `predictions_path`).
        result: An `EvalResult` made with keep_all=True.
    """
    indices = sorted(result.kept)
    truth = np.stack([result.kept[i][0] for i in indices])
    predictions = np.stack([result.kept[i][1] for i in indices], axis=1)
    arrays = {
        "predictions": predictions,
        "ground_truth": truth,
        "sequence_indices": np.asarray(indices, np.int64),
        "n_past": np.asarray(result.n_past),
        "horizon": np.asarray(result.horizon),
        "pixel_format": np.asarray("uint8, value / 255 gives the [0, 1] frames the metrics use"),
    }
    path = predictions_path(path)

    def save(temporary):
        with open(temporary, "wb") as stream:  # a stream: NumPy adds no suffix to the temporary name
            np.savez_compressed(stream, **arrays)

    atomic_save(path, save)
    return path


def write_pictures(out, result, report, gif_sequences):
    """Per-frame metric plot (with the samples' diversity where there are several), and a
    GIF and a strip per chosen sequence showing up to `MAX_DRAWN_SAMPLES` samples.

    Args:
        out: Output folder.
        result: An `EvalResult`.
        report: Its report dict (for the plot's title).
        gif_sequences: Indices of the sequences to draw; those not kept are skipped.

    Returns:
        List of the written paths.
    """
    out = Path(out)
    samples = result.samples
    curves = {
        series_label(series, samples): {name: np.asarray(v) for name, v in scores.items()}
        for series, scores in series_scores(result).items()
    }
    title = (
        f"{report['protocol']['sequences']} sequences, {result.n_past} context frames, "
        f"{samples} samples"
    )
    metric_names = ("psnr", "ssim")
    if result.diversity is not None:
        curves["between two samples"] = {"diversity": result.diversity}
        metric_names += ("diversity",)
    written = [
        plots.plot_per_frame_metrics(
            out / "per_frame_metrics.png", curves, n_past=result.n_past, title=title,
            metric_names=metric_names,
        )
    ]
    for index in gif_sequences:
        if int(index) not in result.kept:
            continue
        truth, predictions = result.kept[int(index)]
        drawn = list(predictions[:MAX_DRAWN_SAMPLES])
        name = f"sequence-{int(index):04d}"
        written.append(visualize.save_comparison_gif(out / f"{name}.gif", truth, drawn, result.n_past))
        written.append(visualize.save_prediction_strip(out / f"{name}-strip.png", truth, drawn, result.n_past))
    return [str(p) for p in written]
