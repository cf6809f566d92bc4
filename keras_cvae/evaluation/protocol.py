"""The evaluation request and its protocol checks: context, horizon, data shape, noise, baseline."""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from keras_cvae.data.bair_tfrecord import SEQUENCE_LENGTH
from keras_cvae.paths import why_not_creatable


class EvaluationError(ValueError):
    """The evaluation request does not fit the run or the data (one-line message)."""


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and where to write it.

    Args:
        run: Run folder; None takes the newest run under `runs_root`.
        runs_root: Folder searched for the newest run.
        data: Dataset directory; None uses the data the run was trained on (run.json).
        split: "train", "val" or "test"; None: the task's (test for bair, val for pose).
        n_past: Context frames; None uses the model's. Any value >= 1 is allowed (the
            model rolls over its context whatever its length); the report says when it
            differs from the training setting.
        horizon: Predicted frames; None uses the model's n_future. n_past + horizon must
            fit in the 30-frame sequences.
        samples: Samples per sequence (N of mean and best of N).
        batch_size: Sequences per compiled rollout call; None: the task's (16 for bair,
            2 for pose, whose 630-frame videos are few).
        seed: Seed of the latent noise.
        out: Output folder; None writes to `<run>/eval/`.
        save_predictions: Optional .npz file for the predictions and the ground truth.
        gif_sequences: Indices of the sequences drawn as GIFs and strips (indices past
            the evaluated sequences are skipped).
        max_sequences: Evaluate only the first sequences of the split.
        jit_compile: Compile the rollout with XLA (slow to compile on CPU).
        progress: Show a progress bar.
        task: The name of the task the run must be, or None for whichever it is.
    """

    run: Optional[str] = None
    runs_root: str = "runs"
    data: Optional[str] = None
    split: Optional[str] = None
    n_past: Optional[int] = None
    horizon: Optional[int] = None
    samples: int = 5
    batch_size: Optional[int] = None
    seed: int = 0
    out: Optional[str] = None
    save_predictions: Optional[str] = None
    gif_sequences: tuple = (0,)
    max_sequences: Optional[int] = None
    jit_compile: bool = False
    progress: bool = True
    task: Optional[str] = None

    def __post_init__(self):
        if self.samples < 1:
            raise EvaluationError(f"samples (--samples) must be at least 1, got {self.samples}")
        if self.batch_size is not None and self.batch_size < 1:
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


def resolve_protocol(model_config, n_past=None, horizon=None):
    """(n_past, horizon) of an evaluation, checked against the model and the sequences.

    Args:
        model_config: The run's `SVGConfig`.
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
        batch: {"frames": [B, T, *frame_shape], "conditions": [B, T, *condition_shape]}
            (arrays or tensors).
        model_config: The model's config (its `frame_shape` and `condition_shape`).
        where: The data's name, for the message.
    """
    frame_shape = tuple(batch["frames"].shape[2:])
    if frame_shape != model_config.frame_shape:
        raise EvaluationError(f"{where}: frames are {frame_shape}, the model expects {model_config.frame_shape}")
    condition_shape = tuple(batch["conditions"].shape[2:])
    if condition_shape == model_config.condition_shape:
        return
    if len(condition_shape) == len(model_config.condition_shape) == 1:
        raise EvaluationError(f"{where}: conditions have {condition_shape[0]} values per frame, "
                              f"the model expects {model_config.condition_shape[0]}")
    raise EvaluationError(f"{where}: conditions are {condition_shape} per frame, the model expects "
                          f"{model_config.condition_shape}")


def sample_noise(seed, sequence_indices, samples, horizon, latent_shape):
    """Standard-normal latent noise [samples, len(sequence_indices), horizon, *latent_shape].

    The noise of sequence i is drawn from `numpy.random.default_rng([seed, i])`, so a
    sequence's predictions do not depend on the batch size, on the other sequences or on
    `max_sequences`.

    Args:
        seed: Evaluation seed.
        sequence_indices: Indices of the sequences in the split.
        samples: Samples per sequence.
        horizon: Predicted frames.
        latent_shape: One step's latent shape, `config.latent_shape` ((noise_dim,) for SVG).
    """
    noise = [
        np.random.default_rng([int(seed), int(i)]).standard_normal((samples, horizon, *latent_shape))
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
