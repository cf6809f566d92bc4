"""Frozen configuration dataclasses shared by the library and the scripts.

A config is the single source of truth for a run: scripts build one from their flags, the
library only ever reads it, and it round-trips through plain dicts (JSON, `get_config`).
"""

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Optional

KL_SCHEDULES = ("cyclical", "monotonic", "none")
# Keras dtype policies: mixed_bfloat16 for recent GPUs (no loss scaling), mixed_float16 for older ones.
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


# The command-line flag of a config field, where it differs from --field-name; fields set
# by no flag are listed as None, so that error messages only name flags that exist.
_FLAGS = {"learning_rate": "--lr", "beta1": None, "checkpoints_to_keep": None, "image_size": None,
          "channels": None, "condition_dim": None, "g_dim": None, "z_dim": None, "rnn_size": None,
          "predictor_layers": None, "posterior_layers": None, "prior_layers": None, "width": None,
          "n_past": None, "n_future": None, "latent_levels": None,
          "latent_channels": None}


def _named(field: str) -> str:
    """`field` with the flag that sets it, e.g. "batch_size (--batch-size)"."""
    flag = _FLAGS.get(field, "--" + field.replace("_", "-"))
    return f"{field} ({flag})" if flag else field


def _check(ok: bool, field: str, requirement: str, value):
    """Raises the one-line ValueError "<field> (<flag>) must be <requirement>, got <value>".

    Args:
        ok: Whether the value is valid.
        field: The config field.
        requirement: What a valid value is, completing "must be ...".
        value: The value given.
    """
    if not ok:
        raise ValueError(f"{_named(field)} must be {requirement}, got {value!r}")


def _check_at_least(config, field: str, lowest: int):
    value = getattr(config, field)
    _check(isinstance(value, numbers.Integral) and value >= lowest, field, f"an integer of at least {lowest}", value)


def _finite(value) -> bool:
    return isinstance(value, numbers.Real) and math.isfinite(value)


class DictConfig:
    """Round trip of a config dataclass through a plain dict (JSON, `get_config`)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        """Builds the config from a dict, rejecting keys the dataclass does not know.

        Args:
            values: Mapping of field names to values.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown {cls.__name__} keys: {', '.join(unknown)}")
        return cls(**values)


@dataclass(frozen=True)
class TrainConfig(DictConfig):
    """Optimisation, schedules and bookkeeping of a training run.

    Args:
        epochs: Number of epochs.
        steps_per_epoch: Optimizer steps per epoch.
        validation_steps: Batches of the validation split evaluated after each epoch.
        batch_size: Sequences per batch.
        learning_rate: Adam learning rate.
        beta1: Adam first-moment decay.
        beta: Weight of the KL term at full strength (the annealing multiplies it).
        free_bits: Nats of KL per rollout step the posterior may carry unpenalised (0: the
            reference's plain KL); keeps the latent from collapsing onto the prior early in
            training, see `SVG.kl_penalty`.
        kl: KL annealing schedule, one of "cyclical", "monotonic", "none".
        kl_cycles: Number of cycles over the whole run for the cyclical schedule.
        kl_ratio: Fraction of each cycle (or of the run, monotonic) spent ramping 0 -> 1.
        tfr: Teacher-forcing ratio before it starts to decay.
        tfr_start_decay_epoch: Epoch from which the teacher-forcing ratio decays.
        tfr_decay_step: Amount subtracted from the ratio per epoch once it decays.
        tfr_floor: Lowest teacher-forcing ratio.
        jit_compile: Compile the train and test steps with XLA.
        run_eagerly: Run the steps eagerly, without tf.function (debugging, quick tests).
        precision: Keras dtype policy, one of `PRECISIONS` (mixed ones for GPUs).
        seed: Seed of weights, data order and the random draws inside the steps.
        checkpoints_to_keep: Newest checkpoints kept in the run folder.
        clip_norm: Largest global gradient norm (gradients are rescaled above it), or None
            for no clipping.
    """

    epochs: int = 300
    steps_per_epoch: int = 600
    validation_steps: int = 4
    batch_size: int = 20
    learning_rate: float = 2e-3
    beta1: float = 0.9
    beta: float = 1e-4
    free_bits: float = 0.0
    kl: str = "cyclical"
    kl_cycles: int = 4
    kl_ratio: float = 0.5
    tfr: float = 1.0
    tfr_start_decay_epoch: int = 10
    tfr_decay_step: float = 0.1
    tfr_floor: float = 0.0
    jit_compile: bool = True
    run_eagerly: bool = False
    precision: str = "float32"
    seed: int = 1
    checkpoints_to_keep: int = 3
    clip_norm: Optional[float] = None

    def __post_init__(self):
        for name in ("epochs", "steps_per_epoch", "validation_steps", "batch_size", "kl_cycles",
                     "checkpoints_to_keep"):
            _check_at_least(self, name, 1)
        for name in ("tfr_start_decay_epoch", "seed"):
            _check_at_least(self, name, 0)
        _check(_finite(self.learning_rate) and self.learning_rate > 0, "learning_rate", "positive",
               self.learning_rate)
        _check(_finite(self.beta1) and 0 <= self.beta1 < 1, "beta1", "in [0, 1)", self.beta1)
        _check(_finite(self.beta) and self.beta >= 0, "beta", "at least 0", self.beta)
        _check(_finite(self.free_bits) and self.free_bits >= 0, "free_bits", "at least 0", self.free_bits)
        _check(self.kl in KL_SCHEDULES, "kl", f"one of {', '.join(KL_SCHEDULES)}", self.kl)
        _check(self.precision in PRECISIONS, "precision", f"one of {', '.join(PRECISIONS)}", self.precision)
        _check(_finite(self.kl_ratio) and 0 < self.kl_ratio <= 1, "kl_ratio", "in (0, 1]", self.kl_ratio)
        _check(_finite(self.tfr) and 0 <= self.tfr <= 1, "tfr", "in [0, 1]", self.tfr)
        _check(_finite(self.tfr_decay_step) and self.tfr_decay_step >= 0, "tfr_decay_step", "at least 0",
               self.tfr_decay_step)
        _check(_finite(self.tfr_floor) and 0 <= self.tfr_floor <= self.tfr, "tfr_floor",
               f"in [0, tfr] = [0, {self.tfr}]", self.tfr_floor)
        _check(self.clip_norm is None or (_finite(self.clip_norm) and self.clip_norm > 0), "clip_norm",
               "positive or None", self.clip_norm)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


@dataclass(frozen=True)
class Preset:
    """A named pair of model and training settings.

    Args:
        model: The model sizes (the config class of the preset's task).
        train: The training settings.
    """

    model: Any
    train: TrainConfig


def replace(config: Any, **changes: Optional[Any]):
    """Returns a copy of a frozen config with the non-None `changes` applied.

    Scripts pass every flag through here, so a flag left at None keeps the preset value.

    Args:
        config: A frozen dataclass instance.
        **changes: Field values; None means "keep".
    """
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
