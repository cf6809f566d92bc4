"""Keras callbacks of a training run: a divergence guard, checkpoints, curves and GIFs."""

import collections
import json
import math
import sys
import time

import keras
import numpy as np

from keras_cvae import backends, plots, visualize
from keras_cvae.files import atomic_save, atomic_write_text
from keras_cvae.time_budget import BudgetSpent


def save_model_file(run, model):
    """Writes the run's model.keras (atomically), without the optimizer.

    Args:
        run: The `RunFolder`.
        model: The model being fitted (its variables in sync, see `backends.sync_variables`).
    """
    with backends.unshared():  # only the first of several processes saves
        atomic_save(run.model_file, lambda path: model.save(path, include_optimizer=False))


class TrainingDiverged(RuntimeError):
    """A loss, metric or weight stopped being finite.

    Args:
        epoch: Epoch (1-based) in which it happened.
        step: Step of that epoch (1-based), or None if found at the epoch's end.
        what: What was not finite.
    """

    def __init__(self, epoch, step, what):
        where = f"epoch {epoch}" + (f" step {step}" if step is not None else "")
        super().__init__(f"training diverged at {where}: {what}")
        self.epoch = epoch
        self.step = step


def first_non_finite_weight(model):
    """The path of the first model variable holding a NaN or infinity, or None.

    Args:
        model: A built model.
    """
    for variable in model.variables:
        if not np.all(np.isfinite(keras.ops.convert_to_numpy(variable))):
            return variable.path
    return None


def _seed_states(model):
    # Keras leaves the states of its random generators out of saved weights.
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


def random_state(model) -> list:
    """The states of `model`'s random generators, for a checkpoint.

    Args:
        model: A built model.
    """
    return [keras.ops.convert_to_numpy(v).tolist() for v in _seed_states(model)]


def restore_random_state(model, states):
    """Puts back what `random_state` returned, so a resumed run draws the same noise.

    Args:
        model: The model `states` came from (same architecture).
        states: The list from `random_state`.
    """
    for variable, value in zip(_seed_states(model), states, strict=True):
        variable.assign(np.asarray(value, dtype=variable.dtype))


def _first_non_finite_log(logs):
    for name, value in (logs or {}).items():
        if not math.isfinite(float(value)):
            return f"{name} is {float(value)}"
    return None


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, metric or weight by raising
    `TrainingDiverged`, before any later callback can save the bad state.

    Placed first in the callback list. Keras's `TerminateOnNaN` only stops after the
    epoch, whose end-of-epoch callbacks would then save NaN weights.

    Args:
        first_step: Steps already done in the first epoch (a run resumed mid-epoch).
    """

    def __init__(self, first_step=0):
        super().__init__()
        self.pending_offset = first_step

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.offset, self.pending_offset = self.pending_offset, 0

    def on_train_batch_end(self, batch, logs=None):
        problem = _first_non_finite_log(logs)
        if problem:
            raise TrainingDiverged(self.epoch + 1, self.offset + batch + 1, problem)

    def on_epoch_end(self, epoch, logs=None):
        backends.sync_variables(self.model)
        problem = _first_non_finite_log(logs)
        weight = first_non_finite_weight(self.model)
        if problem or weight:
            raise TrainingDiverged(epoch + 1, None, problem or f"weight {weight} is not finite")


class LossWatch:
    """The per-step training losses of the recent past, to tell a loss that explodes.

    Keras logs an epoch's running mean after each step; the watch recovers each step's own
    loss from two successive means. A step's loss is suspect when it is not finite or more
    than `factor` times the median of the `window` steps before it (judged once `warmup`
    steps are known; before that only finiteness counts). The median follows the run, so a
    lasting change of level (a resume with another learning rate) is accepted after about
    half a window.

    Args:
        window: Steps the median is taken over.
        factor: How far above the median a loss may be.
        warmup: Steps needed before the factor is applied.
        recent: Losses of earlier steps (a checkpoint's `recent_losses`), oldest first.
    """

    def __init__(self, window=100, factor=10.0, warmup=10, recent=()):
        self.window = window
        self.factor = factor
        self.warmup = warmup
        self.losses = collections.deque((float(v) for v in recent), maxlen=window + 1)
        self.previous_mean = None

    def start_epoch(self):
        """Called at an epoch's start: the running mean starts again."""
        self.previous_mean = None

    def record(self, step, running_mean):
        """Adds a step's loss.

        Args:
            step: The step's number in its epoch, from 1.
            running_mean: The epoch's mean loss over steps 1..`step`, as Keras logs it.
        """
        running_mean = float(running_mean)
        if step == 1:
            loss = running_mean
        elif self.previous_mean is not None:
            loss = step * running_mean - (step - 1) * self.previous_mean
        else:  # the first step after a mid-epoch resume: the mean before it is unknown
            loss = None
        self.previous_mean = running_mean
        if loss is not None:
            self.losses.append(loss)

    def problem(self):
        """Why the newest step's loss is suspect, or None if it is not."""
        if not self.losses:
            return None
        newest, before = self.losses[-1], list(self.losses)[:-1]
        if not math.isfinite(newest):
            return f"the loss is {newest}"
        if len(before) < self.warmup:
            return None
        median = float(np.median(before))
        if newest > self.factor * median:
            return (f"the loss {newest:.4g} is over {self.factor:g} times the median "
                    f"{median:.4g} of the {len(before)} steps before")
        return None

    def recent(self) -> list:
        """The losses kept, for a checkpoint."""
        return list(self.losses)


class RunCheckpoint(keras.callbacks.Callback):
    """Saves the run: after each epoch, and as a backup every so many steps or minutes.

    At an epoch's end it writes, each atomically and in this order, the checkpoint (model
    and optimizer weights, then its JSON state: position and history), log.csv from that
    history, model.keras and run.json; then it prunes old checkpoints. A resumed run's
    run.json is first written here, with its first checkpoint: a resume that fails or
    diverges before one leaves the file as it was. A kill at any
    moment leaves the newest complete checkpoint, and the log is rewritten from a
    checkpoint's history on resume, so rows are never duplicated or lost.

    A backup is a checkpoint taken mid-epoch; its state also holds the epoch's metric
    accumulators, so the resumed epoch logs the same means as an uninterrupted one.

    Only a good state is saved: none whose weights are not finite, and none whose step
    loss the `LossWatch` finds suspect (a loss that explodes). A suspect epoch end writes
    its log row but no checkpoint, model.keras or run.json, so the newest checkpoint is
    always one a resume can continue from. The first save of a session that resumed from
    an older checkpoint than the newest (`--from-checkpoint`) removes the newer ones: the
    run's history now goes on from the older one.
    The optimizer state includes the iteration count, from which the KL and
    teacher-forcing schedules are computed, so a resumed run continues them exactly.

    Args:
        run: The `RunFolder`.
        info: The run.json dict; its "epochs_done" is updated.
        history: Per-epoch logs of earlier epochs (a resumed run's past), extended here.
        keep: Newest end-of-epoch checkpoints kept.
        steps_per_epoch: Steps of a full epoch.
        backup_every_steps: Backup interval in steps (0: none).
        backup_every_seconds: Backup interval in seconds (0: none).
        first_step: Steps already done in the first epoch (a run resumed mid-epoch).
        stop_when: Callable telling after a step that the run must stop now (a time
            budget, see `keras_cvae.time_budget`): a backup is saved and `BudgetSpent`
            raised. None: never.
        loss_watch: The `LossWatch` judging each step's loss (a new one if None).
        resumed_from: The checkpoint this session started from, or None.
    """

    def __init__(self, run, info, history, keep, steps_per_epoch, backup_every_steps=0,
                 backup_every_seconds=0.0, first_step=0, stop_when=None, loss_watch=None,
                 resumed_from=None):
        super().__init__()
        self.run = run
        self.info = dict(info)
        self.history = history
        self.keep = keep
        self.steps_per_epoch = steps_per_epoch
        self.backup_every_steps = backup_every_steps
        self.backup_every_seconds = backup_every_seconds
        self.pending_offset = first_step
        self.stop_when = stop_when
        self.loss_watch = loss_watch or LossWatch()
        self.resumed_from = resumed_from

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.step, self.pending_offset = self.pending_offset, 0
        self.last_backup = (self.step, time.monotonic())
        self.loss_watch.start_epoch()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if logs and "loss" in logs:
            self.loss_watch.record(self.step, logs["loss"])
        if self.step >= self.steps_per_epoch:
            return  # the epoch's checkpoint follows
        if self.stop_when is not None and self.stop_when():
            self._backup()
            raise BudgetSpent(self.epoch, self.step)
        steps_due = self.backup_every_steps and self.step - self.last_backup[0] >= self.backup_every_steps
        seconds_due = (self.backup_every_seconds
                       and time.monotonic() - self.last_backup[1] >= self.backup_every_seconds)
        if steps_due or seconds_due:
            self._backup()

    def _why_not_good(self):
        """Why the model's state now must not be saved, or None."""
        backends.sync_variables(self.model)
        weight = first_non_finite_weight(self.model)
        return f"weight {weight} is not finite" if weight else self.loss_watch.problem()

    def _write(self, checkpoint, state):
        if self.resumed_from is not None:  # the session's first save: its branch replaces newer ones
            for newer in self.run.checkpoints():
                if newer > self.resumed_from:
                    newer.remove()
            self.resumed_from = None
        state = {**state, "history": self.history, "random_state": random_state(self.model),
                 "recent_losses": self.loss_watch.recent()}
        with backends.unshared():  # only the first of several processes saves
            self.run.write_checkpoint(checkpoint, self.model.save_weights, state)

    def _backup(self):
        problem = self._why_not_good()
        if problem:  # a non-finite state stops the run at the guard; a spike may pass
            print(f"note: no backup at epoch {self.epoch + 1} step {self.step}: {problem}", file=sys.stderr)
        else:
            metrics = [keras.ops.convert_to_numpy(v).tolist() for v in self.model.metrics_variables]
            self._write(self.run.checkpoint(self.epoch, self.step),
                        {"epoch": self.epoch, "step": self.step, "metrics": metrics})
            self.run.write_info(self.info)  # a resume's settings, once it has a checkpoint of its own
            self.run.prune_checkpoints(self.keep)
        self.last_backup = (self.step, time.monotonic())

    def on_epoch_end(self, epoch, logs=None):
        extend_history(self.history, logs)
        problem = self._why_not_good()
        if problem:
            newest = self.run.checkpoints()
            kept = f"the newest checkpoint stays {newest[-1].name}" if newest else "no checkpoint is kept yet"
            print(f"note: epoch {epoch + 1} is not saved as a checkpoint ({problem}); {kept}",
                  file=sys.stderr)
            self.run.write_log(self.history)
            return
        self._write(self.run.checkpoint(epoch + 1), {"epoch": epoch + 1, "step": 0})
        self.run.write_log(self.history)
        save_model_file(self.run, self.model)
        self.info["epochs_done"] = epoch + 1
        self.run.write_info(self.info)
        self.run.prune_checkpoints(self.keep)


def extend_history(history: dict, logs):
    """Appends an epoch's logs to a run's per-epoch history ({name: [value per epoch]}).

    Args:
        history: The history, extended in place.
        logs: The epoch's logs, as Keras hands them to `on_epoch_end`.
    """
    for name, value in (logs or {}).items():
        history.setdefault(name, []).append(float(value))


class EpochHistory(keras.callbacks.Callback):
    """Extends a run's per-epoch history after each epoch, as `RunCheckpoint` does, where no
    run folder is written (a process of several other than the first).

    Args:
        history: The dict to extend.
    """

    def __init__(self, history):
        super().__init__()
        self.history = history

    def on_epoch_end(self, epoch, logs=None):
        extend_history(self.history, logs)


class RestoreEpochMetrics(keras.callbacks.Callback):
    """Puts a mid-epoch backup's metric accumulators back at the start of its epoch.

    `fit` resets the metrics before `on_epoch_begin`, so this runs after the reset.

    Args:
        values: The backup's `metrics` (one array per `model.metrics_variables`), or None.
    """

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_begin(self, epoch, logs=None):
        if self.values is not None:
            for variable, value in zip(self.model.metrics_variables, self.values):
                variable.assign(np.asarray(value, dtype=variable.dtype))
            self.values = None


class CurvePlotter(keras.callbacks.Callback):
    """Redraws curves.png from the whole run's per-epoch history after each epoch.

    Args:
        path: Where the PNG goes.
        history: The dict `RunCheckpoint` extends (so a resumed run keeps its past).
        title: Plot title.
    """

    def __init__(self, path, history, title):
        super().__init__()
        self.path = path
        self.history = history
        self.title = title

    def on_epoch_end(self, epoch, logs=None):
        self.draw()

    def draw(self):
        """Draws the history as it stands (a resumed run redraws a plot a kill cut short)."""
        if self.history:
            plots.plot_curves(self.path, self.history, title=self.title)


class SampleGif(keras.callbacks.Callback):
    """Writes a GIF of one validation sequence per epoch: the ground truth beside
    `samples` samples of the model's prediction (several show the latent at work, or
    samples that are all alike).

    The noise is fixed, so successive GIFs show the same draws as the model learns.

    Args:
        directory: Folder for samples/epoch-NNNN.gif.
        batch: A validation batch dict (numpy) of frames and conditions.
        n_past: Context frames.
        latent_shape: Shape of one step's latent noise, without the batch ((noise_dim,) for SVG).
        seed: Seed of the fixed noise.
        samples: Samples drawn side by side.
    """

    def __init__(self, directory, batch, n_past, latent_shape, seed, samples=1):
        super().__init__()
        self.directory = directory
        self.samples = samples
        self.frames = batch["frames"][:1]
        self.conditions = np.repeat(batch["conditions"][:1], samples, axis=0)
        self.n_past = n_past
        horizon = self.frames.shape[1] - n_past
        self.noise = np.random.default_rng(seed).standard_normal((samples, horizon, *latent_shape), "float32")

    def on_epoch_end(self, epoch, logs=None):
        self.write(epoch + 1)

    def path(self, epoch):
        return self.directory / f"epoch-{epoch:04d}.gif"

    def write(self, epoch):
        """Writes the GIF of the model as it is after `epoch` epochs."""
        inputs = {
            "context": np.repeat(self.frames[:, : self.n_past], self.samples, axis=0),
            "conditions": self.conditions,
            "noise": self.noise,
        }
        with backends.on_this_process(self.model):  # only the first of several processes writes GIFs
            samples = keras.ops.convert_to_numpy(self.model(inputs, training=False))
        visualize.save_comparison_gif(self.path(epoch), self.frames[0], list(samples), self.n_past)


class LatentUsage(keras.callbacks.Callback):
    """After each epoch, what the latent carries on a fixed validation batch: the KL of
    every latent dimension and rollout step (`SVG.latent_kl`), kept in a JSON file and
    drawn beside it (`plots.plot_latent_usage`).

    Args:
        path: The JSON file; the PNG goes beside it with the suffix .png.
        batch: A validation batch dict (numpy) of frames and conditions.
        z_dim: Top-level latent dimensions (the spatial levels of hierarchical latents are
            counted in the per-step KL only).
        epochs_done: Epochs the run has finished; a record of later epochs (left by a
            kill after them) is dropped, as the history is.
        title: Plot title.
    """

    def __init__(self, path, batch, z_dim, epochs_done, title):
        super().__init__()
        self.path = path
        self.batch = batch
        self.z_dim = z_dim
        self.title = title
        self.record = {"epochs": [], "kl_per_dimension": [], "kl_per_step": []}
        if epochs_done and path.is_file():
            try:
                saved = json.loads(path.read_text())
                keep = [i for i, epoch in enumerate(saved["epochs"]) if epoch <= epochs_done]
                self.record = {key: [saved[key][i] for i in keep] for key in self.record}
            except (OSError, ValueError, KeyError, TypeError, IndexError):
                pass  # unreadable: start a new record rather than fail the run

    def on_epoch_end(self, epoch, logs=None):
        # The rollout draws its latents from the model's random stream, which must go on as
        # if it had not: the epoch's checkpoint, saved before, holds the stream's state, and
        # a run resumed from it continues exactly (and only the first of several processes
        # draws this, where all must go on alike).
        states = random_state(self.model)
        with backends.on_this_process(self.model):  # drops its assignments with several processes
            kl = keras.ops.convert_to_numpy(
                self.model.latent_kl(self.batch["frames"], self.batch["conditions"])
            ).astype(np.float64)  # [B, steps, noise_dim]
        if random_state(self.model) != states:
            restore_random_state(self.model, states)
        self.record["epochs"].append(epoch + 1)
        self.record["kl_per_dimension"].append([float(v) for v in kl[..., : self.z_dim].mean(axis=(0, 1))])
        self.record["kl_per_step"].append([float(v) for v in kl.sum(axis=-1).mean(axis=0)])
        atomic_write_text(self.path, json.dumps({
            **self.record,
            "about": "KL(posterior || prior) in nats, mean over the sequences of one validation batch, "
                     "teacher-forced rollout in inference mode",
        }))
        plots.plot_latent_usage(self.path.with_suffix(".png"), self.record, title=self.title)
