"""Training to a time budget: how many epochs fit, and a schedule clock that fits them.

A run given `--time-limit` cannot know its length in steps until it has measured its own
step time, after compilation, on the machine it runs on. So it plans as it goes: the first
epoch runs with the schedules held at their start (KL weight 0, teacher forcing on); at the
start of every later epoch the measured step time and end-of-epoch work give the number of
epochs that still fit before the deadline, and the schedule clock (the model's `schedule_clock`:
schedule step = offset + rate * optimizer step) is re-aimed so that the KL annealing and
teacher-forcing schedules of the configured run reach their end with the last planned step.
The schedule position is continuous across re-plans, so a machine that slows down or
speeds up bends the schedules' pace, never their shape. If steps overrun the plan, the
run stops before the deadline mid-epoch with a backup checkpoint.
"""

import math
import statistics
import time
from dataclasses import dataclass

import keras
import numpy as np


RECENT_STEPS = 500  # step times the pace is the median of
RECENT_EPOCHS = 5  # epoch ends the end-of-epoch cost is the median of


def schedule_progress(model, schedule_steps) -> float:
    """The fraction of its schedules a model has trained through, in [0, 1].

    Args:
        model: A model with a `schedule_clock` and a built optimizer.
        schedule_steps: Schedule steps of the configured run (`TrainConfig.total_steps`).
    """
    offset, rate = (float(v) for v in keras.ops.convert_to_numpy(model.schedule_clock))
    step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    return min(1.0, max(0.0, (offset + rate * step) / schedule_steps))


class BudgetSpent(Exception):
    """The time budget ended: mid-epoch (a backup checkpoint holds the run's position), or
    at an epoch's start, where the next epoch no longer fits (step 0).

    Args:
        epoch: Completed epochs.
        step: Steps done in the next epoch.
    """

    def __init__(self, epoch, step):
        where = f"{step} steps into epoch {epoch + 1}" if step else f"after epoch {epoch}"
        super().__init__(f"the time budget ended {where}")
        self.epoch = epoch
        self.step = step


@dataclass(frozen=True)
class ClockPlan:
    """Where a budgeted run ends and how its schedule clock runs until then.

    Args:
        end_epoch: Epochs the run will have done when it stops.
        offset: Schedule step at optimizer step 0 (see `ScheduledTraining.schedule_clock`).
        rate: Schedule steps per optimizer step.
    """

    end_epoch: int
    offset: float
    rate: float

    def position(self, optimizer_step):
        """The schedule step at `optimizer_step`."""
        return self.offset + self.rate * optimizer_step


def plan_epochs(*, epochs_done, steps_per_epoch, seconds_left, step_seconds, epoch_overhead_seconds,
                schedule_position, schedule_steps) -> ClockPlan:
    """The epochs that fit in `seconds_left`, and the clock that ends the schedules with them.

    Args:
        epochs_done: Completed epochs (the plan starts at their end).
        steps_per_epoch: Optimizer steps per epoch.
        seconds_left: Seconds until the run must have stopped.
        step_seconds: Measured seconds per optimizer step.
        epoch_overhead_seconds: Measured seconds of an epoch's end (validation, checkpoint,
            model file, plots, GIF).
        schedule_position: Schedule step reached now (continuous across plans).
        schedule_steps: Schedule steps of the configured run (epochs x steps per epoch):
            the position the last planned step reaches.

    Returns:
        A `ClockPlan`. With no epoch left, or the schedules already complete, the clock
        stands still where it is.
    """
    epoch_seconds = steps_per_epoch * step_seconds + epoch_overhead_seconds
    more = max(0, math.floor(seconds_left / epoch_seconds)) if epoch_seconds > 0 else 0
    done_steps = epochs_done * steps_per_epoch
    if more == 0 or schedule_position >= schedule_steps:
        return ClockPlan(epochs_done + more, float(schedule_position), 0.0)
    rate = (schedule_steps - schedule_position) / (more * steps_per_epoch)
    return ClockPlan(epochs_done + more, schedule_position - rate * done_steps, rate)


class TimeBudget(keras.callbacks.Callback):
    """Plans a budgeted run at every epoch's start and stops it where the plan ends.

    An epoch's start is where the previous epoch's whole cost is known: its steps, and its
    end (validation, checkpoint, model file, plots, GIF), measured from its last step to
    this first one. Each plan sets the clock before the epoch's first step, so the
    checkpoint at the epoch's end holds the clock and run.json the plan it ran under. An
    epoch that no longer fits is not begun: `BudgetSpent` is raised with step 0, and the
    previous epoch's checkpoint is the run's last. `spent()` tells the checkpointing
    callback when to stop mid-epoch instead (the next step would pass the deadline).

    Args:
        deadline: `time.monotonic()` value by which the run must have stopped.
        steps_per_epoch: Optimizer steps per epoch.
        schedule_steps: Schedule steps of the configured run (`TrainConfig.total_steps`).
        record: The run.json entry of the budget; updated in place with each plan, so that
            the checkpointing callback writes it with the epoch.
        freeze_schedules: Hold the schedules at their current position until the first
            plan (a new run: its first epoch measures the step time).
    """

    def __init__(self, deadline, steps_per_epoch, schedule_steps, record, freeze_schedules=False):
        super().__init__()
        self.deadline = deadline
        self.steps_per_epoch = steps_per_epoch
        self.schedule_steps = schedule_steps
        self.record = record
        self.freeze_schedules = freeze_schedules
        self.intervals = []  # seconds between step ends within an epoch, this session
        self.overheads = []  # seconds of each epoch's end, measured at the next epoch's start
        self.epoch_seconds = []  # seconds of each whole single-step epoch, its end included
        self.batch_ends = []
        self.last_batch_end = None

    @property
    def planned_end_epoch(self):
        """The epoch the latest plan ends with, or None before the first plan."""
        return self.record.get("end_epoch")

    def on_train_begin(self, logs=None):
        if self.freeze_schedules:
            offset, rate = self._clock()
            position = offset + rate * self._optimizer_step()
            self.model.schedule_clock.assign(np.float32([position, 0.0]))
            self.freeze_schedules = False

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.batch_ends = []

    def on_train_batch_begin(self, batch, logs=None):
        if self.batch_ends:
            return
        now = time.monotonic()
        if self.last_batch_end is not None:
            # From the last step of the previous epoch to the first of this one: its end.
            self.overheads.append(now - self.last_batch_end)
            self._plan(now)
        self.epoch_first_begin = now

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if self.batch_ends:
            self.intervals.append(now - self.batch_ends[-1])
        self.batch_ends.append(now)
        self.last_batch_end = now

    def _pace(self):
        """Seconds per step: the median of the recent past, so that one slow stretch (a
        plot, a busy machine) does not shrink the plan and leave the schedules short."""
        if self.intervals:
            return statistics.median(self.intervals[-RECENT_STEPS:])
        return None  # one step per epoch so far: a step's time holds its epoch's data start-up

    def spent(self) -> bool:
        """Whether one more step, at the measured pace, would pass the deadline."""
        pace = self._pace() or 0.0  # the first step compiles: it says nothing of the pace
        return self.last_batch_end is not None and self.last_batch_end + 1.5 * pace > self.deadline

    def _plan(self, now):
        step_seconds = self._pace()
        overhead = statistics.median(self.overheads[-RECENT_EPOCHS:])
        if step_seconds is None:  # single-step epochs: the last whole epoch is the measure
            step_seconds, overhead = now - self.epoch_first_begin, 0.0
        offset, rate = self._clock()
        done = self._optimizer_step()
        plan = plan_epochs(
            epochs_done=self.epoch, steps_per_epoch=self.steps_per_epoch,
            seconds_left=self.deadline - now, step_seconds=step_seconds,
            epoch_overhead_seconds=overhead, schedule_position=offset + rate * done,
            schedule_steps=self.schedule_steps,
        )
        self.model.schedule_clock.assign(np.float32([plan.offset, plan.rate]))
        self.record.update({
            "end_epoch": plan.end_epoch,
            "step_seconds": round(step_seconds, 6),
            "epoch_overhead_seconds": round(overhead, 3),
            "schedule_clock": [plan.offset, plan.rate],
            "plans": self.record.get("plans", 0) + 1,
        })
        if plan.end_epoch <= self.epoch:
            raise BudgetSpent(self.epoch, 0)

    def _optimizer_step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def _clock(self):
        return tuple(float(v) for v in keras.ops.convert_to_numpy(self.model.schedule_clock))
