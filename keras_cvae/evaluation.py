"""Evaluation of a trained run: the n_past -> horizon video-prediction protocol.

Protocol (the lab's, with the papers' best-of-N beside it): each test sequence gives
`n_past` context frames and the conditions (actions and end-effector positions) of every
step; the model predicts the next `horizon` frames feeding back its own predictions
(teacher forcing off) with latents drawn from the prior. Only predicted frames are
scored (context frames are excluded), per frame, with PSNR (one MSE per frame), the
per-channel "finn" PSNR of the SVG reference, and SSIM (`keras_cvae.metrics`).

For N samples per sequence the report gives the first sample alone ("1 sample"), the
mean over samples ("mean of N") and the best sample ("best of N": per sequence and per
metric, the sample whose horizon-averaged score is highest, as the SVG reference picks
it). The copy-last-context-frame baseline is scored the same way.

The rollout never sees the future frames: it is a compiled function of the context
frames, the conditions and the noise only. The noise of sequence i is drawn from
`numpy.random.default_rng([seed, i])`, so a sequence's predictions do not depend on the
batch size, on the other sequences or on `max_sequences`.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import keras
import numpy as np

from keras_cvae import backends, metrics
from keras_cvae.data.bair_tfrecord import SEQUENCE_LENGTH
from keras_cvae.paths import why_not_creatable
from keras_cvae.files import atomic_save, atomic_write_text
from keras_cvae.run_folder import RunFolder, latest_run

METRIC_NAMES = ("psnr", "psnr_per_channel", "ssim")
SERIES = ("copy_last_frame", "model_single", "model_mean_of_n", "model_best_of_n")


class EvaluationError(ValueError):
    """The evaluation request does not fit the run or the data (one-line message)."""


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and where to write it.

    Args:
        run: Run folder; None takes the newest run under `runs_root`.
        runs_root: Folder searched for the newest run.
        data: Dataset directory; None uses the data the run was trained on (run.json).
        split: "train", "val" or "test".
        n_past: Context frames; None uses the model's. Any value >= 1 is allowed (the
            model rolls over its context whatever its length); the report says when it
            differs from the training setting.
        horizon: Predicted frames; None uses the model's n_future. n_past + horizon must
            fit in the 30-frame sequences.
        samples: Samples per sequence (N of mean and best of N).
        batch_size: Sequences per compiled rollout call.
        seed: Seed of the latent noise.
        out: Output folder; None writes to `<run>/eval/`.
        save_predictions: Optional .npz file for the predictions and the ground truth.
        gif_sequences: Indices of the sequences drawn as GIFs and strips (indices past
            the evaluated sequences are skipped).
        max_sequences: Evaluate only the first sequences of the split.
        jit_compile: Compile the rollout with XLA (slow to compile on CPU).
        progress: Show a progress bar.
    """

    run: Optional[str] = None
    runs_root: str = "runs"
    data: Optional[str] = None
    split: str = "test"
    n_past: Optional[int] = None
    horizon: Optional[int] = None
    samples: int = 5
    batch_size: int = 16
    seed: int = 0
    out: Optional[str] = None
    save_predictions: Optional[str] = None
    gif_sequences: tuple = (0,)
    max_sequences: Optional[int] = None
    jit_compile: bool = False
    progress: bool = True

    def __post_init__(self):
        if self.samples < 1:
            raise EvaluationError(f"samples (--samples) must be at least 1, got {self.samples}")
        if self.batch_size < 1:
            raise EvaluationError(f"batch_size (--batch-size) must be at least 1, got {self.batch_size}")
        if self.max_sequences is not None and self.max_sequences < 1:
            raise EvaluationError(f"max_sequences (--max-sequences) must be at least 1, got {self.max_sequences}")
        if any(int(i) < 0 for i in self.gif_sequences):
            raise EvaluationError(f"gif_sequences (--gif-sequences) must be >= 0, got {list(self.gif_sequences)}")
        if self.seed < 0:
            raise EvaluationError(f"seed (--seed) must be at least 0, got {self.seed}")
        outputs = [self.out] if self.out is not None else []
        if self.save_predictions is not None:
            outputs.append(Path(self.save_predictions).parent)
        for folder in outputs:
            reason = why_not_creatable(folder)
            if reason is not None:
                raise EvaluationError(f"{folder}: cannot create the output folder ({reason})")


@dataclass
class EvalResult:
    """Scores of one evaluation, per sample, sequence and predicted frame.

    Attributes:
        n_past: Context frames.
        horizon: Predicted frames.
        model_scores: {metric: [samples, sequences, horizon]}.
        baseline_scores: {metric: [sequences, horizon]} of the copy-last-frame baseline.
        kept: {sequence index: (ground truth [n_past + horizon, 64, 64, 3] uint8,
            predictions [samples, horizon, 64, 64, 3] uint8)} of the kept sequences.
        rollout_seconds: Time of the evaluation loop (data reading, rollouts, scoring),
            the first call's tracing included.
    """

    n_past: int
    horizon: int
    model_scores: dict
    baseline_scores: dict
    kept: dict = field(default_factory=dict)
    rollout_seconds: float = 0.0

    @property
    def sequences(self) -> int:
        return self.baseline_scores["psnr"].shape[0]

    @property
    def samples(self) -> int:
        return self.model_scores["psnr"].shape[0]


# ---------------------------------------------------------------------- protocol
def resolve_protocol(model_config, n_past=None, horizon=None):
    """(n_past, horizon) of an evaluation, checked against the model and the sequences.

    Args:
        model_config: The run's `ModelConfig`.
        n_past: Requested context frames, None for the model's.
        horizon: Requested predicted frames, None for the model's n_future.

    Raises:
        EvaluationError: n_past < 1, horizon < 1, or n_past + horizon > 30.
    """
    n_past = model_config.n_past if n_past is None else int(n_past)
    horizon = model_config.n_future if horizon is None else int(horizon)
    if n_past < 1:
        raise EvaluationError(f"n_past (--n-past) must be at least 1 (the model needs a context frame), got {n_past}")
    if horizon < 1:
        raise EvaluationError(f"horizon (--horizon) must be at least 1, got {horizon}")
    if n_past + horizon > SEQUENCE_LENGTH:
        raise EvaluationError(
            f"n_past + horizon = {n_past} + {horizon} = {n_past + horizon} is longer than the "
            f"{SEQUENCE_LENGTH}-frame sequences; use --horizon {SEQUENCE_LENGTH - n_past} at most"
        )
    return n_past, horizon


def check_batch_matches_model(batch, model_config, where):
    """Raises EvaluationError if the frames or conditions of `batch` do not fit the model.

    Args:
        batch: {"frames": [B, T, H, W, C], "conditions": [B, T, D]} (arrays or tensors).
        model_config: The model's `ModelConfig`.
        where: The data's name, for the message.
    """
    frame_shape = tuple(batch["frames"].shape[2:])
    wanted = (model_config.image_size, model_config.image_size, model_config.channels)
    if frame_shape != wanted:
        raise EvaluationError(f"{where}: frames are {frame_shape}, the model expects {wanted}")
    condition_size = batch["conditions"].shape[-1]
    if condition_size != model_config.condition_dim:
        raise EvaluationError(
            f"{where}: conditions have {condition_size} values per frame, "
            f"the model expects {model_config.condition_dim}"
        )


def sample_noise(seed, sequence_indices, samples, horizon, z_dim):
    """Standard-normal latent noise [samples, len(sequence_indices), horizon, z_dim].

    Sequence i always gets the same noise for the same seed, whatever the batching.

    Args:
        seed: Evaluation seed.
        sequence_indices: Indices of the sequences in the split.
        samples: Samples per sequence.
        horizon: Predicted frames.
        z_dim: Latent size.
    """
    noise = [
        np.random.default_rng([int(seed), int(i)]).standard_normal((samples, horizon, z_dim))
        for i in sequence_indices
    ]
    return np.stack(noise, axis=1).astype(np.float32)


def copy_last_frame(context, horizon):
    """The baseline prediction: the last context frame repeated `horizon` times.

    Args:
        context: [B, n_past, H, W, C].
        horizon: Predicted frames.
    """
    return np.repeat(np.asarray(context)[:, -1:], horizon, axis=1)


# ---------------------------------------------------------------------- compiled pieces
def make_rollout(model, jit_compile=False):
    """Compiled generation: (context, conditions, noise) -> predicted frames.

    The model's own rollout (`SVG.call`: one symbolic loop over `SVG.step`), compiled
    for the backend: the graph holds the encoder and decoder once, so tracing and
    compilation take the same time for a horizon of 28 as for 10. The signature has no
    future frames, so the predictions cannot depend on them.

    Args:
        model: An `SVG` model.
        jit_compile: Compile with XLA (TensorFlow; JAX always does).

    Returns:
        A function of context [B, n_past, 64, 64, 3], conditions [B, n_past + H, D] and
        noise [B, H, z_dim] returning [B, H, 64, 64, 3] float32 in [0, 1].
    """

    def rollout(context, conditions, noise):
        return model({"context": context, "conditions": conditions, "noise": noise}, training=False)

    return backends.compiled(rollout, model, jit_compile)


def make_scorer(jit_compile=False):
    """Compiled per-frame scores: (predictions, targets) -> {metric: [..., H]}.

    Args:
        jit_compile: Compile with XLA (TensorFlow; JAX always does).
    """

    def score(predictions, targets):
        return {
            "psnr": metrics.psnr(predictions, targets),
            "psnr_per_channel": metrics.psnr_per_channel(predictions, targets),
            "ssim": metrics.ssim(predictions, targets),
        }

    return backends.compiled(score, None, jit_compile)


def _padded(array, size):
    """Pads the batch axis to `size` by repeating the last row (one compiled shape)."""
    missing = size - array.shape[0]
    if missing <= 0:
        return array
    return np.concatenate([array, np.repeat(array[-1:], missing, axis=0)], axis=0)


def _progress_bar(target, enabled):
    if not enabled:
        return None
    import keras

    return keras.utils.Progbar(target, unit_name="sequence")


def evaluate_model(
    model,
    dataset,
    *,
    n_past,
    horizon,
    samples,
    seed,
    batch_size,
    max_sequences=None,
    keep_sequences=(),
    keep_all=False,
    rollout=None,
    scorer=None,
    jit_compile=False,
    where="data",
    progress_target=None,
    progress=False,
):
    """Rolls the model out over a dataset and scores every predicted frame.

    Args:
        model: An `SVG` model.
        dataset: Iterable of {"frames": [B, n_past + horizon, 64, 64, 3] in [0, 1],
            "conditions": [B, n_past + horizon, D]} in a fixed order (e.g. `make_dataset`
            with training=False); batches may have any size.
        n_past: Context frames.
        horizon: Predicted frames.
        samples: Samples per sequence.
        seed: Seed of the latent noise (see `sample_noise`).
        batch_size: Sequences per rollout call; smaller batches are padded to it.
        max_sequences: Stop after this many sequences.
        keep_sequences: Sequence indices whose frames are returned in `EvalResult.kept`.
        keep_all: Keep the frames of every sequence (for `save_predictions`).
        rollout: A function from `make_rollout`; None makes one.
        scorer: A function from `make_scorer`; None makes one.
        jit_compile: XLA for the functions made here.
        where: Name of the data in error messages.
        progress_target: Expected number of sequences, for the progress bar.
        progress: Show a progress bar.

    Returns:
        An `EvalResult`.

    Raises:
        EvaluationError: The data does not fit the model, or it holds no sequence.
        DataError: A record of the NumPy engine's data is malformed (named by file and
            index); a tf.data pipeline raises TensorFlow's error, which
            `data.pipeline_errors` (as `evaluate_run` uses it) turns into a DataError.
    """
    from keras_cvae.visualize import to_uint8

    rollout = rollout or make_rollout(model, jit_compile)
    scorer = scorer or make_scorer(jit_compile)
    keep = {int(i) for i in keep_sequences}
    model_scores = {name: [[] for _ in range(samples)] for name in METRIC_NAMES}
    baseline_scores = {name: [] for name in METRIC_NAMES}
    kept = {}
    bar = _progress_bar(progress_target, progress)
    start, seen = time.perf_counter(), 0
    for batch in _rebatched(dataset, batch_size, max_sequences):
        check_batch_matches_model(batch, model.config, where)
        frames = batch["frames"]
        if frames.shape[1] < n_past + horizon:
            raise EvaluationError(
                f"{where}: sequences have {frames.shape[1]} frames, need n_past + horizon = {n_past + horizon}"
            )
        frames = frames[:, : n_past + horizon]
        conditions = batch["conditions"][:, : n_past + horizon]
        count = frames.shape[0]
        indices = np.arange(seen, seen + count)
        context, future = frames[:, :n_past], frames[:, n_past:]
        noise = sample_noise(seed, indices, samples, horizon, model.config.z_dim)
        padded_context, padded_conditions = _padded(context, batch_size), _padded(conditions, batch_size)
        padded_future = _padded(future, batch_size)
        predictions = []
        for sample in range(samples):
            prediction = rollout(padded_context, padded_conditions, _padded(noise[sample], batch_size))
            scores = scorer(prediction, padded_future)
            for name in METRIC_NAMES:
                model_scores[name][sample].append(np.asarray(scores[name])[:count])
            if keep or keep_all:
                predictions.append(to_uint8(np.asarray(prediction)[:count]))
        baseline = scorer(_padded(copy_last_frame(context, horizon), batch_size), padded_future)
        for name in METRIC_NAMES:
            baseline_scores[name].append(np.asarray(baseline[name])[:count])
        for row, index in enumerate(indices):
            if keep_all or int(index) in keep:
                kept[int(index)] = (to_uint8(frames[row]), np.stack([p[row] for p in predictions]))
        seen += count
        if bar is not None:
            bar.update(seen)
    if seen == 0:
        raise EvaluationError(f"{where}: no sequences to evaluate")
    by_sample = {
        name: np.stack([np.concatenate(parts) for parts in per_sample]).astype(np.float64)
        for name, per_sample in model_scores.items()
    }
    return EvalResult(
        n_past=n_past,
        horizon=horizon,
        model_scores=by_sample,
        baseline_scores={k: np.concatenate(v).astype(np.float64) for k, v in baseline_scores.items()},
        kept=kept,
        rollout_seconds=time.perf_counter() - start,
    )


def _rebatched(dataset, batch_size, max_sequences):
    """NumPy batches of at most `batch_size` sequences, stopping after `max_sequences`."""
    pending, seen = [], 0
    limit = max_sequences if max_sequences is not None else float("inf")

    def joined():
        return {key: np.concatenate([p[key] for p in pending]) for key in ("frames", "conditions")}

    from keras_cvae.data import iterate_numpy

    # A PyDataset (the NumPy engine) is indexed, not iterated; anything else is iterable.
    batches = iterate_numpy(dataset) if isinstance(dataset, keras.utils.PyDataset) else iter(dataset)
    for batch in batches:
        batch = {key: np.asarray(batch[key]) for key in ("frames", "conditions")}
        take = int(min(batch["frames"].shape[0], limit - seen))
        if take <= 0:
            break
        pending.append({key: value[:take] for key, value in batch.items()})
        seen += take
        while sum(p["frames"].shape[0] for p in pending) >= batch_size:
            whole = joined()
            yield {key: value[:batch_size] for key, value in whole.items()}
            rest = {key: value[batch_size:] for key, value in whole.items()}
            pending = [rest] if rest["frames"].shape[0] else []
        if seen >= limit:
            break
    if pending:
        yield joined()


# ---------------------------------------------------------------------- summaries
def series_scores(result):
    """Per-sequence, per-frame scores of every reported series.

    Returns:
        {series: {metric: [sequences, horizon]}} for the series in `SERIES`: the baseline,
        the first sample, the mean over samples, and per sequence the sample whose
        horizon-averaged score of that metric is highest.
    """
    single, mean, best = {}, {}, {}
    for name, scores in result.model_scores.items():
        single[name] = scores[0]
        mean[name] = scores.mean(axis=0)
        choice = np.argmax(scores.mean(axis=2), axis=0)  # [sequences]
        best[name] = scores[choice, np.arange(scores.shape[1])]
    return {
        "copy_last_frame": result.baseline_scores,
        "model_single": single,
        "model_mean_of_n": mean,
        "model_best_of_n": best,
    }


def _standard_error(values):
    return float(np.std(values, ddof=1) / np.sqrt(values.size)) if values.size > 1 else 0.0


def summarize(result):
    """Every number of the report: averages, standard errors, per-frame and per-sequence.

    Returns:
        {"summary": {series: {metric: {"mean", "sem"}}}, "per_frame": {series: {metric:
        [horizon]}}, "per_sequence": {series: {metric: [sequences]}}}; "sem" is the
        standard error over sequences of the horizon-averaged score.
    """
    summary, per_frame, per_sequence = {}, {}, {}
    for series, scores in series_scores(result).items():
        summary[series], per_frame[series], per_sequence[series] = {}, {}, {}
        for name, values in scores.items():
            sequence_means = values.mean(axis=1)
            summary[series][name] = {"mean": float(values.mean()), "sem": _standard_error(sequence_means)}
            per_frame[series][name] = [float(v) for v in values.mean(axis=0)]
            per_sequence[series][name] = [float(v) for v in sequence_means]
    return {"summary": summary, "per_frame": per_frame, "per_sequence": per_sequence}


def _series_label(series, samples):
    return {
        "copy_last_frame": "copy last context frame",
        "model_single": "model, 1 sample",
        "model_mean_of_n": f"model, mean of {samples} samples",
        "model_best_of_n": f"model, best of {samples} samples",
    }[series]


def protocol_sentence(protocol):
    """One paragraph stating the protocol, for under the table."""
    first = protocol["context_frames"] + 1
    last = protocol["context_frames"] + protocol["horizon"]
    trained = protocol.get("trained_context_frames")
    note = f" (the model was trained with {trained})" if trained not in (None, protocol["context_frames"]) else ""
    return (
        f"Protocol: {protocol['context_frames']} context frames{note}, excluded from the scores; "
        f"{protocol['horizon']} predicted frames (frames {first}-{last}), teacher forcing off, latents "
        f"from the prior; {protocol['sequences']} sequences of the {protocol['split']} split of "
        f"{protocol['data']}; {protocol['samples']} samples per sequence (best of N picks, per sequence "
        f"and metric, the sample with the highest horizon-averaged score), seed {protocol['seed']}; "
        f"checkpoint {protocol['checkpoint']}. Values: mean over sequences and predicted frames "
        "+- standard error over sequences. PSNR = 10 log10(1/MSE) per frame on [0, 1] images; "
        "PSNR per channel is the SVG reference's \"finn\" variant; SSIM: 11x11 Gaussian window, sigma 1.5."
    )


def format_table(report):
    """The paste-able Markdown table of a report (`metrics.json` content) and its protocol."""
    samples = report["protocol"]["samples"]
    lines = [
        "| method | PSNR (dB) | SSIM | PSNR per channel (dB) |",
        "|---|---|---|---|",
    ]
    for series in SERIES:
        cells = report["summary"][series]
        lines.append(
            f"| {_series_label(series, samples)} "
            f"| {cells['psnr']['mean']:.2f} +- {cells['psnr']['sem']:.2f} "
            f"| {cells['ssim']['mean']:.4f} +- {cells['ssim']['sem']:.4f} "
            f"| {cells['psnr_per_channel']['mean']:.2f} +- {cells['psnr_per_channel']['sem']:.2f} |"
        )
    return "\n".join(lines) + "\n\n" + protocol_sentence(report["protocol"]) + "\n"


# ---------------------------------------------------------------------- outputs
def save_predictions(path, result):
    """Writes the kept sequences' predictions and ground truth to an .npz (atomically).

    Keys: "predictions" uint8 [samples, sequences, horizon, 64, 64, 3], "ground_truth"
    uint8 [sequences, n_past + horizon, 64, 64, 3], "sequence_indices", "n_past",
    "horizon", "pixel_format" (how to get [0, 1] floats back). The reported scores were
    computed on float predictions; recomputing them from these uint8 frames differs by
    the 8-bit rounding only (far below 0.01 dB).

    Args:
        path: Destination .npz file.
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
    atomic_save(Path(path), lambda temporary: np.savez_compressed(temporary, **arrays))
    return Path(path)


def write_pictures(out, result, report, gif_sequences):
    """Per-frame metric plot, and a GIF and a strip per chosen sequence (first sample).

    Returns:
        List of the written paths.
    """
    from keras_cvae import visualize

    out = Path(out)
    samples = result.samples
    curves = {
        _series_label(series, samples): {name: np.asarray(v) for name, v in scores.items()}
        for series, scores in series_scores(result).items()
    }
    title = (
        f"{report['protocol']['sequences']} sequences, {result.n_past} context frames, "
        f"{samples} samples"
    )
    written = [
        visualize.plot_per_frame_metrics(
            out / "per_frame_metrics.png", curves, n_past=result.n_past, title=title
        )
    ]
    for index in gif_sequences:
        if int(index) not in result.kept:
            continue
        truth, predictions = result.kept[int(index)]
        name = f"sequence-{int(index):04d}"
        written.append(
            visualize.save_comparison_gif(out / f"{name}.gif", truth, predictions[0], result.n_past)
        )
        written.append(
            visualize.save_prediction_strip(out / f"{name}-strip.png", truth, predictions[0], result.n_past)
        )
    return [str(p) for p in written]


def _describe_data(source):
    from keras_cvae.data import describe_source

    return describe_source(source)


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
    from keras_cvae.data import make_dataset, pipeline_errors

    started = time.perf_counter()
    run = RunFolder(Path(config.run)) if config.run is not None else latest_run(config.runs_root)
    info = run.read_info()
    model_config = run.model_config()
    n_past, horizon = resolve_protocol(model_config, config.n_past, config.horizon)
    model = run.load_model()
    source = config.data if config.data is not None else info.get("data")
    data = _describe_data(source)
    where = f"{data['path']} ({config.split} split)"
    available = data["splits"].get(config.split)
    target = min(filter(None, (available, config.max_sequences)), default=None)
    dataset = make_dataset(
        source, config.split, n_past=n_past, n_future=horizon, batch_size=config.batch_size, training=False
    )
    with pipeline_errors(source):
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
    protocol = {
        "context_frames": n_past,
        "trained_context_frames": model_config.n_past,
        "horizon": horizon,
        "context_frames_excluded": True,
        "teacher_forcing": 0.0,
        "latents": "prior",
        "samples": config.samples,
        "best_of_n": "per sequence and metric, the sample with the highest horizon-averaged score",
        "seed": config.seed,
        "data": data["path"],
        "data_kind": data["kind"],
        "split": config.split,
        "sequences": result.sequences,
        "run": str(run.path),
        "checkpoint": str(run.model_file),
        "epochs_done": info.get("epochs_done"),
        "jit_compile": config.jit_compile or keras.backend.backend() == "jax",
        "backend": keras.backend.backend(),
        "batch_size": config.batch_size,
    }
    out = Path(config.out) if config.out is not None else run.path / "eval"
    report = {"protocol": protocol, **summarize(result)}
    files = write_pictures(out, result, report, config.gif_sequences)
    if config.save_predictions is not None:
        files.append(str(save_predictions(config.save_predictions, result)))
    report["time"] = {
        "rollout_seconds": result.rollout_seconds,
        "sequences_per_second": result.sequences / result.rollout_seconds,
        "total_seconds": time.perf_counter() - started,
    }
    metrics_file = out / "metrics.json"
    atomic_write_text(metrics_file, json.dumps(report, indent=2))
    files.insert(0, str(metrics_file))
    return {**report, "table": format_table(report), "files": files}


__all__ = [
    "EvalConfig",
    "EvalResult",
    "EvaluationError",
    "copy_last_frame",
    "evaluate_model",
    "evaluate_run",
    "format_table",
    "make_rollout",
    "make_scorer",
    "resolve_protocol",
    "sample_noise",
    "save_predictions",
    "series_scores",
    "summarize",
]
