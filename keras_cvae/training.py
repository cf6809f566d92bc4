"""Training runs: from a `TrainingJob` to a run folder with a trained, resumable model."""

import dataclasses
import datetime
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import keras

from keras_cvae import data as data_lib
from keras_cvae.callbacks import CurvePlotter, RunCheckpoint, SampleGif
from keras_cvae.config import ModelConfig, TrainConfig
from keras_cvae.model import SVG
from keras_cvae.run_folder import RunError, RunFolder
from keras_cvae.schedules import schedules_from_config


@dataclass(frozen=True)
class TrainingJob:
    """Everything a training run needs.

    Args:
        model: Model sizes (ignored on resume: the run's own config is used).
        train: Training settings (on resume only `epochs` is taken, to extend the run).
        data: Data source for `make_dataset`, or None for the embedded dataset.
        out: Run folder to create; None makes `runs/<time>-<preset>-<kl>`.
        resume: Run folder to continue from its newest checkpoint, or None.
        preset: Name of the preset the configs came from (recorded in run.json).
        runs_root: Parent folder of new runs when `out` is None.
        verbose: Keras progress output: "auto", 0, 1 (bar) or 2 (a line per epoch).
    """

    model: ModelConfig
    train: TrainConfig
    data: Optional[str] = None
    out: Optional[Path] = None
    resume: Optional[Path] = None
    preset: str = "svg"
    runs_root: Path = Path("runs")
    verbose: object = "auto"


@dataclass(frozen=True)
class TrainingResult:
    """What `train` hands back.

    Args:
        run: The run folder.
        history: Per-epoch logs of the whole run (resumed epochs included).
    """

    run: RunFolder
    history: dict

    @property
    def val_psnr(self) -> float:
        return self.history["val_psnr"][-1]

    @property
    def copy_last_psnr(self) -> float:
        return self.history["val_copy_last_psnr"][-1]


class ValidationBatches(keras.utils.PyDataset):
    """The first validation batches, held in memory and served the same every epoch.

    Args:
        batches: List of {"frames", "conditions"} NumPy batches.
    """

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


def _new_run_folder(job: TrainingJob) -> RunFolder:
    if job.out is not None:
        path = Path(job.out)
        if path.exists() and any(path.iterdir()):
            raise RunError(f"{path}: already exists and is not empty; use --resume to continue it")
        return RunFolder(path)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(job.runs_root) / f"{stamp}-{job.preset}-{job.train.kl}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(job.runs_root) / f"{stamp}-{job.preset}-{job.train.kl}-{suffix}"
    return RunFolder(path)


def _start_run(job: TrainingJob):
    """Creates a new run: (run folder, run info, model, train config, history)."""
    run = _new_run_folder(job)
    mean, std = data_lib.condition_statistics(job.data)
    info = {
        "model": job.model.to_dict(),
        "train": job.train.to_dict(),
        "data": None if job.data is None else str(job.data),
        "condition_mean": mean.tolist(),
        "condition_std": std.tolist(),
        "preset": job.preset,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "epochs_done": 0,
    }
    run.write_info(info)
    model = SVG(job.model, condition_mean=info["condition_mean"],
                condition_std=info["condition_std"], seed=job.train.seed)
    return run, info, model, job.train, {}


def _resume_run(job: TrainingJob):
    """Reopens a run at its newest checkpoint: (run folder, info, model, train config, history).

    The optimizer is built first so that its state, iteration count included, is restored
    with the weights.
    """
    run = RunFolder(Path(job.resume))
    info = run.read_info()
    checkpoints = run.checkpoints()
    if not checkpoints:
        raise RunError(f"{run.checkpoint_dir}: no checkpoint to resume from")
    train_config = dataclasses.replace(run.train_config(), epochs=job.train.epochs)
    info["train"] = train_config.to_dict()
    model = SVG(run.model_config(), condition_mean=info["condition_mean"],
                condition_std=info["condition_std"], seed=train_config.seed)
    state = json.loads(checkpoints[-1].with_name(
        checkpoints[-1].name.replace(".weights.h5", ".json")).read_text())
    return run, info, model, train_config, {"_checkpoint": checkpoints[-1], **state}


def compile_model(model: SVG, train_config: TrainConfig):
    """Compiles `model` for `train_config`: Adam, schedules, beta, XLA.

    Args:
        model: The SVG model.
        train_config: The training settings.
    """
    kl_annealing, teacher_forcing = schedules_from_config(train_config)
    model.compile(
        optimizer=keras.optimizers.Adam(train_config.learning_rate, beta_1=train_config.beta1),
        kl_annealing=kl_annealing,
        teacher_forcing=teacher_forcing,
        beta=train_config.beta,
        # JAX has no graph mode but XLA: uncompiled, it re-traces every loop at every step.
        jit_compile=(train_config.jit_compile or keras.backend.backend() == "jax")
        and not train_config.run_eagerly,
        run_eagerly=train_config.run_eagerly,
    )
    model.optimizer.build(model.trainable_variables)


def _tensorboard(log_dir):
    """Keras's TensorBoard callback, or none without TensorFlow (it writes via tf.summary)."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        print("note: no TensorBoard logs without TensorFlow; log.csv and curves.png hold the "
              "same curves", file=sys.stderr)
        return []
    return [keras.callbacks.TensorBoard(str(log_dir), write_graph=False)]


def train(job: TrainingJob) -> TrainingResult:
    """Trains (or resumes) a run and returns its folder and history.

    Args:
        job: The `TrainingJob`.
    """
    if job.train.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(job.train.seed)
    if job.resume is not None:
        run, info, model, train_config, state = _resume_run(job)
    else:
        run, info, model, train_config, state = _start_run(job)
    info["backend"] = keras.backend.backend()  # of the latest session: resume may switch
    run.write_info(info)
    compile_model(model, train_config)
    if "_checkpoint" in state:
        model.load_weights(state["_checkpoint"])
    history = state.get("history", {})
    initial_epoch = state.get("epoch", 0)

    config = model.config
    windows = dict(n_past=config.n_past, n_future=config.n_future)
    train_data = data_lib.make_dataset(job.data, "train", **windows, batch_size=train_config.batch_size,
                                       training=True, seed=train_config.seed + initial_epoch)
    val_data = ValidationBatches(list(data_lib.iterate_numpy(
        data_lib.make_dataset(job.data, "val", **windows, batch_size=train_config.batch_size,
                              training=False),
        max_batches=train_config.validation_steps,
    )))
    sample_batch = val_data[0]
    title = f"{run.path.name}: {info['preset']} preset, KL {train_config.kl}"
    # Logs first and the checkpoint after them: an epoch counts as done once its
    # checkpoint exists, and by then its CSV row is written.
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(run.path / "log.csv"), append=initial_epoch > 0),
        *_tensorboard(run.path / "tensorboard"),
        RunCheckpoint(run, info, history, keep=train_config.checkpoints_to_keep),
        CurvePlotter(run.path / "curves.png", history, title),
        SampleGif(run.samples_dir, sample_batch, config.n_past, config.z_dim, train_config.seed),
    ]
    model.fit(
        train_data,
        epochs=train_config.epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=train_config.steps_per_epoch,
        validation_data=val_data,
        callbacks=callbacks,
        verbose=job.verbose,
        shuffle=False,  # the datasets shuffle themselves
    )
    return TrainingResult(run, history)


def summary_line(result: TrainingResult) -> str:
    """One line comparing the model's validation PSNR with the copy-last-frame baseline."""
    if "val_psnr" not in result.history:
        return f"Run folder: {result.run.path} (no epoch finished)"
    gain = result.val_psnr - result.copy_last_psnr
    verdict = "above" if gain > 0 else "NOT above"
    return (
        f"Validation PSNR (1 sample, future frames only): model {result.val_psnr:.2f} dB vs "
        f"copy-last-frame {result.copy_last_psnr:.2f} dB ({gain:+.2f} dB, {verdict} the baseline)."
        f"\nRun folder: {result.run.path}"
    )

