"""Rolling a model out over a dataset and scoring every predicted frame (PSNR, SSIM)."""

import time
from dataclasses import dataclass, field
from typing import Optional

import keras
import numpy as np

from keras_cvae import backends, metrics
from keras_cvae.data import iterate_numpy
from keras_cvae.evaluation.protocol import EvaluationError, check_batch_matches_model, copy_last_frame, sample_noise
from keras_cvae.visualize import to_uint8

METRIC_NAMES = ("psnr", "psnr_per_channel", "ssim")


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
        diversity: [sequences, horizon] RMS distance per pixel between two samples of a
            sequence (`SpreadOfSamples`), or None for one sample.
    """

    n_past: int
    horizon: int
    model_scores: dict
    baseline_scores: dict
    kept: dict = field(default_factory=dict)
    rollout_seconds: float = 0.0
    diversity: Optional[np.ndarray] = None

    @property
    def sequences(self) -> int:
        return self.baseline_scores["psnr"].shape[0]

    @property
    def samples(self) -> int:
        return self.model_scores["psnr"].shape[0]


class SpreadOfSamples:
    """How different the samples of a batch are: the RMS distance per pixel between two
    samples, averaged over the pairs.

    sqrt(mean over pairs i < j and pixels of (x_i - x_j)^2), per sequence and frame: 0
    when every sample is the same, on the scale of a frame's RMS error otherwise (pixel
    values in [0, 1]). The mean squared distance over the S(S-1)/2 pairs equals
    2 / (S - 1) * sum_s (x_s - mean)^2, so a running sum and sum of squares stand in for
    keeping every sample.
    """

    def __init__(self):
        self.count, self.total, self.squares = 0, 0.0, 0.0

    def add(self, prediction):
        """Adds one sample, [B, horizon, H, W, C]."""
        prediction = np.asarray(prediction, np.float64)
        self.count += 1
        self.total = self.total + prediction
        self.squares = self.squares + prediction * prediction

    def diversity(self):
        """[B, horizon] RMS distance per pixel between two samples (None below two samples)."""
        if self.count < 2:
            return None
        spread = self.squares - self.total * self.total / self.count  # sum_s (x_s - mean)^2
        pair_mean = 2.0 / (self.count - 1) * np.maximum(spread, 0.0)
        return np.sqrt(pair_mean.mean(axis=(2, 3, 4)))


def make_rollout(model, jit_compile=False):
    """Compiled generation: (context, conditions, noise) -> predicted frames.

    The model's own rollout (its `call`, e.g. `SVG.call`: one symbolic loop over `SVG.step`), compiled
    for the backend: the graph holds the encoder and decoder once, so tracing and
    compilation take the same time for a horizon of 28 as for 10. The signature has no
    future frames, so the predictions cannot depend on them.

    Args:
        model: A trained model of any task (called on context, conditions and noise).
        jit_compile: Compile with XLA (TensorFlow; JAX always does).

    Returns:
        A function of context [B, n_past, 64, 64, 3], conditions [B, n_past + H, D] and
        noise [B, H, noise_dim] returning [B, H, 64, 64, 3] float32 in [0, 1].
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

    Each sequence gives `n_past` context frames and the conditions (actions and
    end-effector positions) of every step; the model predicts the next `horizon` frames
    feeding back its own predictions (teacher forcing off) with latents drawn from the
    prior. Only predicted frames are scored (context frames are excluded), per frame,
    with PSNR (one MSE per frame), the per-channel "finn" PSNR of the SVG reference, and
    SSIM (`keras_cvae.metrics`). The copy-last-context-frame baseline is scored the same
    way.

    Args:
        model: A trained model of any task (called on context, conditions and noise).
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
    rollout = rollout or make_rollout(model, jit_compile)
    scorer = scorer or make_scorer(jit_compile)
    keep = {int(i) for i in keep_sequences}
    model_scores = {name: [[] for _ in range(samples)] for name in METRIC_NAMES}
    baseline_scores = {name: [] for name in METRIC_NAMES}
    diversity = []
    kept = {}
    bar = keras.utils.Progbar(progress_target, unit_name="sequence") if progress else None
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
        noise = sample_noise(seed, indices, samples, horizon, model.config.latent_shape)
        padded_context, padded_conditions = _padded(context, batch_size), _padded(conditions, batch_size)
        padded_future = _padded(future, batch_size)
        predictions, spread = [], SpreadOfSamples()
        for sample in range(samples):
            prediction = rollout(padded_context, padded_conditions, _padded(noise[sample], batch_size))
            scores = scorer(prediction, padded_future)
            for name in METRIC_NAMES:
                model_scores[name][sample].append(np.asarray(scores[name])[:count])
            if samples > 1:
                spread.add(np.asarray(prediction)[:count])
            if keep or keep_all:
                predictions.append(to_uint8(np.asarray(prediction)[:count]))
        if samples > 1:
            diversity.append(spread.diversity())
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
        diversity=np.concatenate(diversity) if diversity else None,
    )


def _padded(array, size):
    """Pads the batch axis to `size` by repeating the last row (one compiled shape)."""
    missing = size - array.shape[0]
    if missing <= 0:
        return array
    return np.concatenate([array, np.repeat(array[-1:], missing, axis=0)], axis=0)


def _rebatched(dataset, batch_size, max_sequences):
    """NumPy batches of at most `batch_size` sequences, stopping after `max_sequences`."""
    pending, seen = [], 0
    limit = max_sequences if max_sequences is not None else float("inf")

    def joined():
        return {key: np.concatenate([p[key] for p in pending]) for key in ("frames", "conditions")}

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
