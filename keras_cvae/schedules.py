"""KL-weight and teacher-forcing schedules, as functions of the optimizer step.

Deriving both from `optimizer.iterations` (rather than from Python counters updated by
callbacks) keeps them right inside an XLA-compiled step and after a resume: the step count
is saved with the optimizer, so the schedules continue where they stopped.
All functions accept Python numbers, NumPy arrays or tensors.
"""

from dataclasses import dataclass

from keras import ops


@dataclass(frozen=True)
class KLAnnealing:
    """KL annealing of Fu et al. 2019 ("Cyclical Annealing Schedule").

    The weight ramps linearly from 0 to 1 over the first `ratio` of a cycle and stays at 1
    for the rest of it. "cyclical" repeats this `cycles` times over `total_steps`;
    "monotonic" ramps once, over the first cycle, then stays at 1; "none" is always 1.

    Args:
        schedule: "cyclical", "monotonic" or "none".
        total_steps: Optimizer steps of the whole run.
        cycles: Number of cycles over the run.
        ratio: Fraction of a cycle spent ramping up, in (0, 1].
    """

    schedule: str = "cyclical"
    total_steps: int = 1
    cycles: int = 4
    ratio: float = 0.5

    def __call__(self, step):
        """Weight in [0, 1] at optimizer step `step` (0-based)."""
        step = ops.cast(step, "float32")
        if self.schedule == "none":
            return ops.ones_like(step)
        period = max(self.total_steps / self.cycles, 1.0)
        if self.schedule == "cyclical":
            position = ops.mod(step, period) / period
        else:
            position = step / period
        return ops.minimum(position / self.ratio, 1.0)


@dataclass(frozen=True)
class TeacherForcing:
    """Teacher-forcing ratio, constant and then decaying linearly per epoch.

    Epochs are 0-based; at epoch `start_decay_epoch` the ratio is already one
    `decay_step` below `ratio`, and it never goes below `floor`.

    Args:
        ratio: Initial probability of feeding the ground-truth previous frame.
        start_decay_epoch: First epoch with a lowered ratio.
        decay_step: Decrease per epoch.
        floor: Lowest ratio.
        steps_per_epoch: Optimizer steps per epoch, to turn steps into epochs.
    """

    ratio: float = 1.0
    start_decay_epoch: int = 10
    decay_step: float = 0.1
    floor: float = 0.0
    steps_per_epoch: int = 1

    def __call__(self, step):
        """Ratio in [floor, ratio] at optimizer step `step` (0-based)."""
        epoch = ops.floor(ops.cast(step, "float32") / self.steps_per_epoch)
        decays = ops.maximum(epoch - self.start_decay_epoch + 1.0, 0.0)
        return ops.maximum(self.ratio - decays * self.decay_step, self.floor)


def schedules_from_config(train_config):
    """Both schedules of a `TrainConfig`.

    Args:
        train_config: A `keras_cvae.config.TrainConfig`.

    Returns:
        (KLAnnealing, TeacherForcing).
    """
    kl = KLAnnealing(
        schedule=train_config.kl,
        total_steps=train_config.total_steps,
        cycles=train_config.kl_cycles,
        ratio=train_config.kl_ratio,
    )
    teacher_forcing = TeacherForcing(
        ratio=train_config.tfr,
        start_decay_epoch=train_config.tfr_start_decay_epoch,
        decay_step=train_config.tfr_decay_step,
        floor=train_config.tfr_floor,
        steps_per_epoch=train_config.steps_per_epoch,
    )
    return kl, teacher_forcing
