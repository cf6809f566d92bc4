"""Keras callbacks of a training run: checkpoints, curves and sample GIFs per epoch."""

import json

import keras
import numpy as np

from keras_cvae import visualize
from keras_cvae.run_folder import atomic_save, atomic_write_text


class RunCheckpoint(keras.callbacks.Callback):
    """After each epoch: model + optimizer checkpoint, model.keras and run.json, atomically.

    The optimizer state includes its iteration count, from which the KL and
    teacher-forcing schedules are computed, so a resumed run continues them exactly.

    Args:
        run: The `RunFolder`.
        info: The run.json dict; its "epochs_done" is updated.
        history: Per-epoch logs of earlier epochs (a resumed run's past), extended here.
        keep: Newest checkpoints kept.
    """

    def __init__(self, run, info, history, keep):
        super().__init__()
        self.run = run
        self.info = dict(info)
        self.history = history
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        weights_path = self.run.checkpoint_path(epoch + 1)
        atomic_save(weights_path, self.model.save_weights)
        atomic_write_text(
            weights_path.with_name(weights_path.name.replace(".weights.h5", ".json")),
            json.dumps({"epoch": epoch + 1, "history": self.history}, indent=1),
        )
        atomic_save(self.run.model_file, lambda path: self.model.save(path, include_optimizer=False))
        self.info["epochs_done"] = epoch + 1
        self.run.write_info(self.info)
        for stale in self.run.checkpoints()[: -self.keep]:
            stale.unlink()
            stale.with_name(stale.name.replace(".weights.h5", ".json")).unlink(missing_ok=True)


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
        visualize.plot_curves(self.path, self.history, title=self.title)


class SampleGif(keras.callbacks.Callback):
    """Writes a GIF of one validation sequence, ground truth beside prediction, per epoch.

    The noise is fixed, so successive GIFs show the same draw as the model learns.

    Args:
        directory: Folder for samples/epoch-NNNN.gif.
        batch: A validation batch dict (numpy) of frames and conditions.
        n_past: Context frames.
        z_dim: Latent size of the model.
        seed: Seed of the fixed noise.
    """

    def __init__(self, directory, batch, n_past, z_dim, seed):
        super().__init__()
        self.directory = directory
        self.frames = batch["frames"][:1]
        self.conditions = batch["conditions"][:1]
        self.n_past = n_past
        horizon = self.frames.shape[1] - n_past
        self.noise = np.random.default_rng(seed).standard_normal((1, horizon, z_dim), "float32")

    def on_epoch_end(self, epoch, logs=None):
        inputs = {
            "context": self.frames[:, : self.n_past],
            "conditions": self.conditions,
            "noise": self.noise,
        }
        prediction = keras.ops.convert_to_numpy(self.model(inputs, training=False))[0]
        visualize.save_comparison_gif(
            self.directory / f"epoch-{epoch + 1:04d}.gif", self.frames[0], prediction, self.n_past
        )
