"""Training runs: from a `TrainingJob` to a run folder with a trained, resumable model.

Longer than 300 lines because a run's whole life is here, in the order it happens:
claiming or reopening its folder under the lock, the fit loop (with the partial epoch a
backup resumes into), and what a failure leaves behind. The pieces share the job's state.
"""

import dataclasses
import datetime
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import keras

from keras_cvae import backends, tasks
from keras_cvae.callbacks import (CurvePlotter, DivergenceGuard, RestoreEpochMetrics, RunCheckpoint,
                                  SampleGif, TrainingDiverged, restore_random_state)
from keras_cvae.config import ModelConfig, TrainConfig
from keras_cvae.paths import why_not_creatable
from keras_cvae.pose_config import PoseModelConfig
from keras_cvae.files import atomic_save
from keras_cvae.run_folder import LOCK_FILE, Checkpoint, RunError, RunFolder
from keras_cvae.schedules import schedules_from_config

# What a resumed run may change: the length of the run, the step size (after a
# divergence), and how validation and the steps run. Everything else defines the run.
RESUMABLE_SETTINGS = ("epochs", "learning_rate", "validation_steps", "jit_compile", "run_eagerly")


@dataclass(frozen=True)
class TrainingJob:
    """Everything a training run needs.

    Args:
        model: Model sizes of a new run, a `ModelConfig` (bair) or `PoseModelConfig` (pose);
            a resumed run keeps its own.
        train: Training settings of a new run (a resumed run keeps its own, see
            `resume_changes`).
        data: Data source for `make_dataset`, or None: the embedded dataset for a new run,
            the run's own source on resume.
        out: Run folder to create; None makes `runs/<time>-<preset>-<kl>`.
        resume: Run folder to continue from its newest checkpoint, or None.
        resume_changes: Training settings to change on resume ({name: value}, names from
            `RESUMABLE_SETTINGS`), e.g. {"epochs": 50}.
        preset: Name of the preset the configs came from (recorded in run.json).
        runs_root: Parent folder of new runs when `out` is None.
        verbose: Keras progress output: "auto", 0, 1 (bar) or 2 (a line per epoch).
        backup_every_steps: Mid-epoch backup interval in steps (0: none).
        backup_minutes: Mid-epoch backup interval in minutes (0: none).
        data_engine: `make_dataset` engine ("tf", "numpy" or None for its default). With
            "numpy" a resumed run continues the exact data stream of an uninterrupted one.
        devices: Devices each batch is split over (data parallelism, see
            `backends.data_parallel`, JAX only); None: every GPU on JAX, else 1.
        task: "bair" or "pose" (see `keras_cvae.tasks`); a resumed run keeps its own.
    """

    model: Union[ModelConfig, PoseModelConfig]
    train: TrainConfig
    data: Optional[str] = None
    out: Optional[Path] = None
    resume: Optional[Path] = None
    resume_changes: Optional[dict] = None
    preset: str = "svg"
    runs_root: Path = Path("runs")
    verbose: object = "auto"
    backup_every_steps: int = 0
    backup_minutes: float = 10.0
    data_engine: Optional[str] = None
    devices: Optional[int] = None
    task: str = "bair"

    def __post_init__(self):
        if self.backup_every_steps < 0 or self.backup_minutes < 0:
            raise ValueError("backup intervals (--backup-every, --backup-minutes) must be >= 0")
        if self.devices is not None and self.devices < 1:
            raise ValueError(f"devices (--devices) must be at least 1, got {self.devices}")


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


def _new_run_path(job: TrainingJob) -> Path:
    if job.out is not None:
        return Path(job.out)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(job.runs_root) / f"{stamp}-{job.preset}-{job.train.kl}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(job.runs_root) / f"{stamp}-{job.preset}-{job.train.kl}-{suffix}"
    return path


def _claim_new_folder(run: RunFolder):
    """Makes sure a new run may use `run.path`: empty, or a run that never saved a checkpoint
    (a start that failed or was killed), which is cleared."""
    contents = [p for p in run.path.iterdir() if p.name != LOCK_FILE]
    if not contents:
        return
    if run.run_file.is_file() and not run.checkpoints():
        print(f"note: {run.path} holds a run that never saved a checkpoint; starting it over",
              file=sys.stderr)
        run.clear()
        return
    raise RunError(f"{run.path}: already exists and is not empty; use --resume to continue it")


def _new_run_info(job: TrainingJob) -> dict:
    return {
        "task": job.task,
        "model": job.model.to_dict(),
        "train": job.train.to_dict(),
        "data": None if job.data is None else str(job.data),
        **tasks.get_task(job.task).run_info(job.data, job.data_engine),
        "preset": job.preset,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "epochs_done": 0,
    }


def _check_resume_changes(run: RunFolder, changes: dict) -> TrainConfig:
    """The run's own train config, after checking that `changes` may be applied to it."""
    train_config = run.train_config()
    for name in changes:
        if name not in RESUMABLE_SETTINGS:
            raise RunError(
                f"{run.run_file}: {name} cannot change when resuming (the run keeps "
                f"{name}={getattr(train_config, name)!r}); only {', '.join(RESUMABLE_SETTINGS)} "
                "can, or start a new run"
            )
    return train_config


def _reopen(run: RunFolder, job: TrainingJob):
    """(info, train config, newest checkpoint or None) of a run to resume, with the changes
    the job asks for applied and recorded."""
    info = run.read_info()
    changes = dict(job.resume_changes or {})
    train_config = dataclasses.replace(_check_resume_changes(run, changes), **changes)
    if job.data is not None:
        info["data"] = str(job.data)
    checkpoints = run.checkpoints()
    checkpoint = checkpoints[-1] if checkpoints else None
    if checkpoint is None:
        print(f"note: {run.path} has no checkpoint yet; starting the run over", file=sys.stderr)
        run.clear()
    info["train"] = train_config.to_dict()
    info.setdefault("resumes", []).append({
        "from": checkpoint.name if checkpoint else None,
        "changes": changes,
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
    })
    return info, train_config, checkpoint


def _load_checkpoint(model, checkpoint: Checkpoint):
    try:
        model.load_weights(checkpoint.weights_path)
    except Exception as error:  # h5py and Keras raise many types for a damaged or foreign file.
        raise RunError(f"{checkpoint.weights_path}: cannot be loaded into this run's model "
                       f"({type(error).__name__}: {error})") from None


def compile_model(model, train_config: TrainConfig):
    """Compiles `model` for `train_config`: Adam (with gradient clipping if set), schedules, beta, XLA.

    Args:
        model: The SVG or pose model.
        train_config: The training settings.
    """
    kl_annealing, teacher_forcing = schedules_from_config(train_config)
    model.compile(
        optimizer=keras.optimizers.Adam(train_config.learning_rate, beta_1=train_config.beta1,
                                        global_clipnorm=train_config.clip_norm),
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

    The run folder is locked while training. A new run that ends, however, before its
    first checkpoint is removed again: it holds nothing trained.

    Args:
        job: The `TrainingJob`.

    Raises:
        RunError: The folder is in use, not resumable or not claimable, a checkpoint does
            not load, or training diverged (nothing after the last good checkpoint is saved).
        DataError: Bad data.
    """
    if job.resume is not None:
        run = RunFolder(Path(job.resume))
        _check_resume_changes(run, job.resume_changes or {})  # before anything is written
    else:
        run = RunFolder(_new_run_path(job))
        problem = why_not_creatable(run.path)
        if problem:
            raise RunError(f"{run.path}: cannot create the run folder ({problem})")
    created = not run.path.exists()
    with run.lock():
        owned = False
        learning_rate = job.train.learning_rate
        try:
            run.remove_temporaries()
            if job.resume is not None:
                info, train_config, checkpoint = _reopen(run, job)
            else:
                _claim_new_folder(run)
                owned = True
                info, train_config, checkpoint = _new_run_info(job), job.train, None
            learning_rate = train_config.learning_rate
            devices = _device_count(job, train_config)
            info["devices"] = devices
            with backends.data_parallel(devices):
                return _train_locked(run, info, train_config, checkpoint, job)
        except BaseException as error:
            if owned and not run.checkpoints():
                if created:
                    shutil.rmtree(run.path)
                else:
                    run.clear()
            if isinstance(error, TrainingDiverged):
                raise RunError(_divergence_message(run, error, learning_rate)) from None
            raise


def _divergence_message(run: RunFolder, error: TrainingDiverged, learning_rate) -> str:
    retry = f"python scripts/train.py --resume {run.path} --lr {learning_rate / 10:g}"
    if not run.run_file.is_file():
        return (f"{run.path}: {error}; no checkpoint had been saved, so nothing of the run "
                f"was kept. Try a learning rate below {learning_rate:g} (--lr).")
    checkpoints = run.checkpoints()
    if not checkpoints:
        return f"{run.path}: {error}; no checkpoint had been saved. Start it over with a lower learning rate: {retry}"
    return (f"{run.path}: {error}; nothing after the last good checkpoint ({checkpoints[-1].name}) "
            f"was saved. Resume it with a lower learning rate: {retry}")


def _device_count(job: TrainingJob, train_config: TrainConfig) -> int:
    devices = job.devices or backends.default_device_count()
    if train_config.batch_size % devices:
        raise ValueError(f"batch_size (--batch-size) {train_config.batch_size} must be a multiple "
                         f"of the {devices} devices (--devices) it is split over")
    return devices


def _train_locked(run: RunFolder, info: dict, train_config: TrainConfig, checkpoint, job: TrainingJob):
    keras.mixed_precision.set_global_policy(train_config.precision)
    keras.utils.set_random_seed(train_config.seed)
    task = tasks.task_of(info)
    model = task.build_model(info, train_config.seed)
    compile_model(model, train_config)
    state = {"epoch": 0, "step": 0, "history": {}}
    if checkpoint is not None:
        _load_checkpoint(model, checkpoint)
        state = checkpoint.read_state()
        restore_random_state(model, state["random_state"])
        # The optimizer's learning rate is a variable restored with the checkpoint.
        model.optimizer.learning_rate = train_config.learning_rate
    history, epoch, step = state["history"], state["epoch"], state["step"]
    # model.keras is written after a checkpoint and before run.json counts its epoch.
    model_file_lags = checkpoint is not None and step == 0 and info.get("epochs_done") != epoch
    info["epochs_done"] = epoch
    info["backend"] = keras.backend.backend()  # of the latest session: resume may switch
    run.write_info(info)

    with task.data_errors(info["data"]):
        val_data = ValidationBatches(task.validation_batches(info, train_config, job.data_engine))
    title = f"{run.path.name}: {info['preset']} preset, KL {train_config.kl}"
    curves = CurvePlotter(run.path / "curves.png", history, title)
    gifs = SampleGif(run.samples_dir, val_data[0], model.config.n_past, model.config.latent_shape,
                     train_config.seed)
    callbacks = [  # the guard first: it stops before anything saves a diverged state
        DivergenceGuard(first_step=step),
        RestoreEpochMetrics(state.get("metrics")),
        *_tensorboard(run.path / "tensorboard"),
        RunCheckpoint(run, info, history, keep=train_config.checkpoints_to_keep,
                      steps_per_epoch=train_config.steps_per_epoch,
                      backup_every_steps=job.backup_every_steps,
                      backup_every_seconds=60.0 * job.backup_minutes, first_step=step),
        curves,
        gifs,
    ]
    if checkpoint is not None and step == 0:
        # Whatever a kill cut short after this checkpoint was written: the log row, the
        # model file, the plot or the GIF.
        run.write_log(history)
        if model_file_lags:
            atomic_save(run.model_file, lambda path: model.save(path, include_optimizer=False))
        curves.draw()
        if epoch and not gifs.path(epoch).is_file():
            gifs.set_model(model)
            gifs.write(epoch)
    if epoch >= train_config.epochs:
        print(f"note: {run.path} has finished its {train_config.epochs} epochs; pass --epochs to "
              "extend it", file=sys.stderr)
        return TrainingResult(run, history)

    def fit(first_epoch, first_step, steps, extra_callbacks=()):
        start = first_epoch * train_config.steps_per_epoch + first_step
        with task.data_errors(info["data"]):
            model.fit(
                task.training_data(info, train_config, job.data_engine, start),
                epochs=train_config.epochs,
                initial_epoch=first_epoch,
                steps_per_epoch=steps,
                validation_data=val_data,
                callbacks=[*callbacks, *extra_callbacks],
                verbose=job.verbose,
                shuffle=False,  # the datasets shuffle themselves
            )

    if step:  # finish the epoch a backup stopped in, then go on with whole epochs
        stop = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: setattr(model, "stop_training", True))
        fit(epoch, step, train_config.steps_per_epoch - step, [stop])
        epoch += 1
    if epoch < train_config.epochs:
        fit(epoch, 0, train_config.steps_per_epoch)
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

