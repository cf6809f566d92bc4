"""Training runs: from a `TrainingJob` to a run folder with a trained, resumable model.

Longer than 300 lines because a run's whole life is here, in the order it happens:
claiming or reopening its folder under the lock, the fit loop (with the partial epoch a
backup resumes into), and what a failure leaves behind. The pieces share the job's state.
"""

import contextlib
import dataclasses
import datetime
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import keras

from keras_cvae import backends, distributed, tasks
from keras_cvae.callbacks import (CurvePlotter, DivergenceGuard, EpochHistory, LatentUsage, LossWatch,
                                  RestoreEpochMetrics, RunCheckpoint, SampleGif, TrainingDiverged, restore_random_state,
                                  save_model_file)
from keras_cvae.config import TrainConfig
from keras_cvae.data import DataError
from keras_cvae.data.shards import Shard
from keras_cvae.paths import why_not_creatable
from keras_cvae.run_folder import LOCK_FILE, Checkpoint, RunError, RunFolder
from keras_cvae.schedules import schedules_from_config
from keras_cvae.time_budget import BudgetSpent, TimeBudget, schedule_progress

# What a resumed run may change: the length of the run, the step size (after a
# divergence), and how validation and the steps run. Everything else defines the run.
RESUMABLE_SETTINGS = ("epochs", "learning_rate", "validation_steps", "jit_compile", "run_eagerly")


@dataclass(frozen=True)
class TrainingJob:
    """Everything a training run needs.

    Args:
        model: Model sizes of a new run, the config of its task's model (e.g. `SVGConfig`);
            a resumed run keeps its own.
        train: Training settings of a new run (a resumed run keeps its own, see
            `resume_changes`).
        data: Data source for `make_dataset`, or None: the embedded dataset for a new run,
            the run's own source on resume.
        out: Run folder to create; None makes `runs/<time>-<preset>-<kl>`.
        resume: Run folder to continue from its newest checkpoint, or None.
        from_checkpoint: Name of the checkpoint to resume from instead of the newest (e.g.
            "epoch-0003" or "epoch-0003-step-000120"); its first save removes newer ones.
        resume_changes: Training settings to change on resume ({name: value}, names from
            `RESUMABLE_SETTINGS`), e.g. {"epochs": 50}.
        preset: Name of the preset the configs came from (recorded in run.json).
        runs_root: Parent folder of new runs when `out` is None.
        verbose: Keras progress output: "auto", 0, 1 (bar) or 2 (a line per epoch).
        backup_every_steps: Mid-epoch backup interval in steps (0: none).
        backup_minutes: Mid-epoch backup interval in minutes (0: none).
        data_engine: `make_dataset` engine ("tf", "numpy" or None: a resumed run's own,
            recorded in run.json, else the default). With "numpy" a resumed run continues
            the exact data stream of an uninterrupted one.
        devices: Devices of each process each batch is split over (data parallelism, see
            `backends.data_parallel`); None: every GPU of the process on JAX, else 1.
            With several processes (`distributed`) `train.batch_size` is the global batch,
            split over the devices of all of them.
        task: The name of the run's task (see `keras_cvae.tasks`); a resumed run keeps its own.
        time_limit_minutes: Train for this many minutes (counted from the call of `train`)
            instead of `train.epochs`: the run stops at the last epoch that fits, with the
            schedules of the configured run (`train.epochs` x `train.steps_per_epoch`)
            spread over the steps it holds (see `keras_cvae.time_budget`). On resume, a new
            budget for the rest of the run. None: no budget.
    """

    model: Any
    train: TrainConfig
    data: Optional[str] = None
    out: Optional[Path] = None
    resume: Optional[Path] = None
    from_checkpoint: Optional[str] = None
    resume_changes: Optional[dict] = None
    preset: str = "svg"
    runs_root: Path = Path("runs")
    verbose: object = "auto"
    backup_every_steps: int = 0
    backup_minutes: float = 10.0
    data_engine: Optional[str] = None
    devices: Optional[int] = None
    task: str = tasks.DEFAULT_TASK
    time_limit_minutes: Optional[float] = None

    def __post_init__(self):
        if self.backup_every_steps < 0 or self.backup_minutes < 0:
            raise ValueError("backup intervals (--backup-every, --backup-minutes) must be >= 0")
        limit = self.time_limit_minutes
        if limit is not None and not (isinstance(limit, (int, float)) and 0 < limit < float("inf")):
            raise ValueError(f"time limit (--time-limit) must be a positive number of minutes, got {limit!r}")
        if self.from_checkpoint is not None and self.resume is None:
            raise ValueError("--from-checkpoint picks the checkpoint of a run to resume; pass --resume RUN too")
        if self.devices is not None and self.devices < 1:
            raise ValueError(f"devices (--devices) must be at least 1, got {self.devices}")


@dataclass(frozen=True)
class TrainingResult:
    """What `train` hands back.

    Args:
        run: The run folder.
        history: Per-epoch logs of the whole run (resumed epochs included).
        steps: Optimizer steps of the whole run at its end.
        session_steps: Of those, the steps this call ran.
        budget_note: For a run with a time budget, how it ended; else None.
    """

    run: RunFolder
    history: dict
    steps: int = 0
    session_steps: int = 0
    budget_note: Optional[str] = None

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


def _reopen(run: RunFolder, job: TrainingJob, writes: bool = True):
    """(info, train config, newest checkpoint or None) of a run to resume, with the changes
    the job asks for applied and recorded; a run without a checkpoint is cleared to start
    over where `writes`."""
    info = run.read_info()
    changes = dict(job.resume_changes or {})
    if "time_limit" in info and "epochs" in changes:
        raise RunError(f"{run.run_file}: the run trains to a time budget, so --epochs cannot "
                       "extend it; pass --time-limit MINUTES to continue it for that long")
    train_config = dataclasses.replace(_check_resume_changes(run, changes), **changes)
    if job.data is not None:
        info["data"] = str(job.data)
    checkpoint = _chosen_checkpoint(run, job.from_checkpoint)
    if checkpoint is None and writes:
        print(f"note: {run.path} has no checkpoint yet; starting the run over", file=sys.stderr)
        run.clear()
    info["train"] = train_config.to_dict()
    info.setdefault("resumes", []).append({
        "from": checkpoint.name if checkpoint else None,
        "changes": {**changes, **({"time_limit_minutes": job.time_limit_minutes}
                                  if job.time_limit_minutes is not None else {})},
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
    })
    return info, train_config, checkpoint


def _chosen_checkpoint(run: RunFolder, name: Optional[str]) -> Optional[Checkpoint]:
    """The checkpoint named `name`, or the newest if `name` is None (None if there is none)."""
    checkpoints = run.checkpoints()
    if name is None:
        return checkpoints[-1] if checkpoints else None
    for checkpoint in checkpoints:
        if checkpoint.name == name.removesuffix(".json").removesuffix(".weights.h5"):
            return checkpoint
    names = ", ".join(c.name for c in checkpoints) or "none"
    raise RunError(f"{run.checkpoint_dir}: no checkpoint {name!r}; the run has: {names}")


def _load_checkpoint(model, checkpoint: Checkpoint):
    # Keras warns about every part that does not fit before it raises: the one line below
    # says it all, so its warnings are kept back.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.load_weights(checkpoint.weights_path)
        except Exception as error:  # h5py and Keras raise many types for a damaged or foreign file.
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise RunError(f"{checkpoint.weights_path}: cannot be loaded into this run's model, a "
                           f"damaged file or weights of another architecture than run.json's "
                           f"({type(error).__name__}: {first_line})") from None


def compile_model(model, train_config: TrainConfig):
    """Compiles `model` for `train_config`: Adam (with gradient clipping if set), schedules, beta, XLA.

    Args:
        model: The run's model.
        train_config: The training settings.
    """
    kl_annealing, teacher_forcing = schedules_from_config(train_config)
    if train_config.free_bits and not hasattr(model, "kl_penalty"):
        raise ValueError(f"free_bits (--free-bits) is not used by the {type(model).__name__} model; leave it at 0")
    model.compile(
        optimizer=keras.optimizers.Adam(train_config.learning_rate, beta_1=train_config.beta1,
                                        global_clipnorm=train_config.clip_norm),
        kl_annealing=kl_annealing,
        teacher_forcing=teacher_forcing,
        beta=train_config.beta,
        free_bits=train_config.free_bits,
        jit_compile=_uses_xla(train_config) and not train_config.run_eagerly,
        run_eagerly=train_config.run_eagerly,
    )
    model.optimizer.build(model.trainable_variables)


def _uses_xla(train_config: TrainConfig) -> bool:
    """Whether the steps compile with XLA: always on JAX (it has no graph mode but XLA;
    uncompiled, it re-traces every loop at every step); on TensorFlow where the config
    asks for it, a GPU is there (TensorFlow's XLA on a CPU runs the free-running loop
    about 8 times slower than its graph mode) and the step runs on one device (an
    XLA-compiled step of a `MirroredStrategy` cannot reach the other devices' copies of
    the variables)."""
    if keras.backend.backend() == "jax":
        return True
    return train_config.jit_compile and backends.accelerator_present() and backends.replicas() == 1


def _tensorboard(log_dir):
    """Keras's TensorBoard callback, or none without TensorFlow (it writes via tf.summary)."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        print("note: no TensorBoard logs without TensorFlow; log.csv and curves.png hold the "
              "same curves", file=sys.stderr)
        return []
    return [keras.callbacks.TensorBoard(str(log_dir), write_graph=False)]


def _warn_if_gpu_sized(job: TrainingJob):
    """Says on stderr, before a new run starts, that it would take days without the GPU it
    is sized for (see the task's `cpu_warning`). A run with a time limit ends in time anyway."""
    if job.resume is not None or job.time_limit_minutes is not None:
        return
    line = tasks.get_task(job.task).cpu_warning(job, backends.accelerator_present())
    if line:
        print(line, file=sys.stderr)


def train(job: TrainingJob) -> TrainingResult:
    """Trains (or resumes) a run and returns its folder and history.

    The run folder is locked while training. A new run that ends, however, before its
    first checkpoint is removed again: it holds nothing trained.

    With several processes (`distributed`), every process calls this with the same job;
    the first one writes the run folder and the others only read it (see `_follow`).

    Args:
        job: The `TrainingJob`.

    Raises:
        RunError: The folder is in use, not resumable or not claimable, a checkpoint does
            not load, or training diverged (nothing after the last good checkpoint is saved).
        DataError: Bad data.
        ValueError: A setting that several processes cannot share.
    """
    started = time.monotonic()
    shard = distributed.this_shard()
    if not shard.whole:
        _check_shared_job(job, shard)
    if shard.index != 0:
        return _follow(job, shard, started)
    _warn_if_gpu_sized(job)
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
            devices = _device_count(job, train_config, shard)
            info["devices"] = devices
            info["processes"] = shard.count
            with backends.data_parallel(devices):
                return _train_locked(run, info, train_config, checkpoint, job, started, shard)
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
    older = (f" (or from an older one with --from-checkpoint {checkpoints[-2].name})"
             if len(checkpoints) > 1 else "")
    return (f"{run.path}: {error}; nothing after the last good checkpoint ({checkpoints[-1].name}) "
            f"was saved. Resume it with a lower learning rate: {retry}{older}")


def _check_shared_job(job: TrainingJob, shard: Shard):
    """Refuses what several processes cannot do together."""
    if job.time_limit_minutes is not None:
        raise ValueError(f"--time-limit: {shard.count} processes would each measure their own pace and "
                         "plan a different end; train them for a number of --epochs")
    if job.resume is None and job.out is None:
        raise ValueError(f"{shard.count} processes need the run folder named (--out): each must find "
                         "the one that process 0 writes")


def _follow(job: TrainingJob, shard: Shard, started: float) -> TrainingResult:
    """`train` on a process other than the first: it takes no lock and writes nothing.

    It reads the run folder (on a file system all processes share) once the first process
    has made it ready, which holds every process at `distributed.barrier`: a new run's
    run.json is written, a run resumed without a checkpoint is cleared. A resumed run
    loads the checkpoint the first process loads, with the same changes applied.
    """
    distributed.barrier("run folder ready")
    run = RunFolder(Path(job.resume if job.resume is not None else job.out))
    if job.resume is not None:
        info, train_config, checkpoint = _reopen(run, job, writes=False)
    else:
        info, train_config, checkpoint = run.read_info(), job.train, None
    info["devices"] = _device_count(job, train_config, shard)
    info["processes"] = shard.count
    try:
        with backends.data_parallel(info["devices"]):
            return _train_locked(run, info, train_config, checkpoint, job, started, shard)
    except TrainingDiverged as error:  # the first process says what was kept
        raise RunError(f"{run.path}: {error} (process {shard.index} of {shard.count})") from None


def _validation_shares(batches: list, shard: Shard, devices: int) -> list:
    """This process's rows of each validation batch (`Shard.take`): a batch is cut to a
    multiple of all the devices it is split over, and one shorter than that is dropped."""
    shares = [share for share in (shard.take(batch, multiple=devices) for batch in batches)
              if share is not None]
    if batches and not shares:
        raise DataError(f"the validation batches hold fewer sequences than the {devices * shard.count} "
                        "devices they are split over")
    return shares


def _device_count(job: TrainingJob, train_config: TrainConfig, shard: Shard) -> int:
    """The devices of each process a batch is split over (all processes use as many)."""
    devices = job.devices or backends.default_device_count()
    total = devices * shard.count
    if train_config.batch_size % total:
        over = (f"the {devices} devices (--devices)" if shard.whole else
                f"the {total} devices of {shard.count} processes x {devices} (--num-processes, --devices)")
        raise ValueError(f"batch_size (--batch-size) {train_config.batch_size} must be a multiple "
                         f"of {over} it is split over")
    return devices


def _train_locked(run: RunFolder, info: dict, train_config: TrainConfig, checkpoint, job: TrainingJob,
                  started: float, shard: Shard = Shard()):
    # Only the first process writes the run folder; the others compute the same steps.
    writes = shard.index == 0
    # The engine a run started with, unless asked otherwise: each has its own data stream.
    engine = job.data_engine or info.get("data_engine") or _default_engine()
    task = tasks.task_of(info)
    state = checkpoint.read_state() if checkpoint is not None else {"epoch": 0, "step": 0, "history": {}}
    history, epoch, step = state["history"], state["epoch"], state["step"]
    # A kill after the newest checkpoint may have cut short what follows it: the log row,
    # model.keras (written before run.json counts its epoch), the plot or the GIF. An older
    # checkpoint (--from-checkpoint) changes nothing until the session's first save.
    repairs = checkpoint is not None and step == 0 and run.checkpoints()[-1] == checkpoint
    model_file_lags = repairs and info.get("epochs_done") != epoch
    info["epochs_done"] = epoch
    info["backend"] = keras.backend.backend()  # of the latest session: resume may switch
    info["data_engine"] = engine
    if checkpoint is None and writes:  # a new run claims its folder; a resume writes with its first checkpoint
        run.write_info(info)
    if writes:
        # The others wait here to read the folder (see `_follow`), before the first
        # computation that all processes take part in: building the model.
        distributed.barrier("run folder ready")

    keras.mixed_precision.set_global_policy(train_config.precision)
    keras.utils.set_random_seed(train_config.seed)
    model = task.build_model(info, train_config.seed)
    compile_model(model, train_config)
    if checkpoint is not None:
        _load_checkpoint(model, checkpoint)
        restore_random_state(model, state["random_state"])
        # The optimizer's learning rate is a variable restored with the checkpoint.
        model.optimizer.learning_rate = train_config.learning_rate

    with task.data_errors(info["data"]):
        val_data = task.validation_batches(info, train_config, engine)
    # Each process validates on its rows of every batch, as it trains; the callbacks
    # draw from the whole first batch.
    val_shares = ValidationBatches(_validation_shares(val_data, shard, info["devices"]))
    title = f"{run.path.name}: {info['preset']} preset, KL {train_config.kl}"
    curves = CurvePlotter(run.path / "curves.png", history, title)
    # Models that can say what their latent carries (SVG) draw it after every epoch, and
    # their epoch GIFs show three samples side by side.
    latent_usage = (
        [LatentUsage(run.path / "latent_kl.json", val_data[0], model.config.z_dim, epoch, title)]
        if hasattr(model, "latent_kl") else []
    )
    gifs = SampleGif(run.samples_dir, val_data[0], model.config.n_past, model.config.latent_shape,
                     train_config.seed, samples=3 if latent_usage else 1)
    budget = _time_budget(info, train_config, job, started, fresh=checkpoint is None)
    callbacks = [  # the guard first: it stops before anything saves a diverged state
        DivergenceGuard(first_step=step),
        RestoreEpochMetrics(state.get("metrics")),
        *_tensorboard(run.path / "tensorboard"),
        *([budget] if budget else []),  # before the checkpoint, which saves its plan
        RunCheckpoint(run, info, history, keep=train_config.checkpoints_to_keep,
                      steps_per_epoch=train_config.steps_per_epoch,
                      backup_every_steps=job.backup_every_steps,
                      backup_every_seconds=60.0 * job.backup_minutes, first_step=step,
                      stop_when=budget.spent if budget else None,
                      loss_watch=LossWatch(recent=state.get("recent_losses", ())),
                      resumed_from=checkpoint),
        curves,
        *latent_usage,
        gifs,
    ] if writes else [
        # The others write nothing; they keep the history, by which the loop below counts
        # epochs, and the guard stops them where it stops the first (on the same values).
        DivergenceGuard(first_step=step),
        RestoreEpochMetrics(state.get("metrics")),
        EpochHistory(history),
    ]
    if repairs and writes:
        run.write_log(history)
        if model_file_lags:
            save_model_file(run, model)
        curves.draw()
        if epoch and not gifs.path(epoch).is_file():
            gifs.set_model(model)
            gifs.write(epoch)
    first_step = _optimizer_step(model)

    def result(note=None):
        steps = _optimizer_step(model)
        return TrainingResult(run, history, steps, steps - first_step, note)

    end_epoch = _end_epoch(run, info, train_config, budget, epoch)
    if budget is None and epoch >= end_epoch:
        print(f"note: {run.path} has finished its {end_epoch} epochs; pass "
              f"{'--time-limit' if 'time_limit' in info else '--epochs'} to extend it", file=sys.stderr)
        return result()

    def fit(first_epoch, first_step, steps, epochs):
        start = first_epoch * train_config.steps_per_epoch + first_step
        with task.data_errors(info["data"]), _out_of_memory_errors(train_config):
            model.fit(
                task.training_data(info, train_config, engine, start, shard),
                epochs=epochs,
                initial_epoch=first_epoch,
                steps_per_epoch=steps,
                validation_data=val_shares,
                callbacks=callbacks,
                verbose=job.verbose if writes else 0,  # one progress report: the first process's
                shuffle=False,  # the datasets shuffle themselves
            )
        return len(history.get("loss", ()))  # epochs done: one history row per epoch

    try:
        if step:  # finish the epoch a backup stopped in, then go on with whole epochs
            epoch = fit(epoch, step, train_config.steps_per_epoch - step, epoch + 1)
            end_epoch = _end_epoch(run, info, train_config, budget, epoch)
        while epoch < end_epoch:
            done = fit(epoch, 0, train_config.steps_per_epoch, end_epoch)
            if done == epoch:
                break  # a callback stopped the run before the end of an epoch
            # A budget re-plans at every epoch's start: the run may have grown or shrunk.
            epoch, end_epoch = done, _end_epoch(run, info, train_config, budget, done)
    except BudgetSpent as spent:
        if spent.step and run.checkpoints()[-1:] == [run.checkpoint(spent.epoch, spent.step)]:
            # the backup holds the weights (unless the loss was suspect); model.keras follows them
            backends.sync_variables(model)
            save_model_file(run, model)
        info["epochs_done"] = len(history.get("loss", ()))
        info["time_limit"]["stopped"] = {"epoch": spent.epoch, "step": spent.step}
        if _optimizer_step(model) > first_step:  # this session saved a checkpoint
            run.write_info(info)
        how = f"{spent}, before its plan's end" if spent.step else f"stopped after epoch {spent.epoch} as planned"
        return result(_budget_note(job, model, train_config, info["time_limit"], how))
    if budget is None:
        return result()
    return result(_budget_note(job, model, train_config, info["time_limit"],
                               f"stopped after epoch {epoch} as planned"))


def _budget_note(job: TrainingJob, model, train_config: TrainConfig, budget_record: dict, how: str) -> str:
    progress = schedule_progress(model, train_config.total_steps)
    if progress > 0.999:
        schedules = "the schedules complete"
    elif "end_epoch" not in budget_record:  # no plan: the session's first epoch did not fit
        schedules = (f"the schedules at {progress:.0%} of their course (one epoch did not fit in "
                     "the budget: choose fewer --steps-per-epoch)")
    else:  # a plan shrank: steps or epoch ends got slower than measured
        schedules = (f"the schedules at {progress:.0%} of their course (the run slowed down; "
                     "fewer --steps-per-epoch plan more finely)")
    return f"time limit of {job.time_limit_minutes:g} min: {how}, with {schedules}"


@contextlib.contextmanager
def _out_of_memory_errors(train_config: TrainConfig):
    """Turns a step that does not fit in memory into a one-line `RunError` on the batch size."""
    try:
        yield
    except Exception as error:
        if not backends.is_out_of_memory(error):
            raise
        smaller = max(1, train_config.batch_size // 4)
        raise RunError(f"batch_size (--batch-size) {train_config.batch_size}: a training step does not "
                       f"fit in memory; try a smaller batch, e.g. --batch-size {smaller}") from None


def _default_engine() -> str:
    from keras_cvae.data.pipeline import resolve_engine

    return "tf" if resolve_engine() == "tf" else "numpy"


def _optimizer_step(model) -> int:
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _time_budget(info: dict, train_config: TrainConfig, job: TrainingJob, started: float, fresh: bool):
    """The `TimeBudget` callback of a session with a time limit (recorded in run.json), or None."""
    if job.time_limit_minutes is None:
        return None
    info["time_limit"] = {"minutes": job.time_limit_minutes}
    return TimeBudget(deadline=started + 60.0 * job.time_limit_minutes,
                      steps_per_epoch=train_config.steps_per_epoch,
                      schedule_steps=train_config.total_steps, record=info["time_limit"],
                      freeze_schedules=fresh)


def _end_epoch(run: RunFolder, info: dict, train_config: TrainConfig, budget, epochs_done: int) -> int:
    """The epoch the run ends with: its configured epochs, or its time budget's plan.

    A session with a budget that has not planned yet (its first epoch measures the pace)
    ends one epoch on, until the plan says more.
    """
    if "time_limit" not in info:
        return train_config.epochs
    planned = info["time_limit"].get("end_epoch")
    if planned is not None:
        return planned
    if budget is not None:
        return epochs_done + 2  # the pace is measured in the first, the plan made at the second's start
    raise RunError(f"{run.run_file}: the run stopped before its time budget planned its length; "
                   "resume it with --time-limit MINUTES")


def summary_line(result: TrainingResult) -> str:
    """Lines comparing the model's validation PSNR with the copy-last-frame baseline, with
    the steps run and how a time budget ended."""
    lines = [f"Trained {result.session_steps} steps in this session ({result.steps} in the whole run)."]
    if result.budget_note:
        lines.append(result.budget_note[0].upper() + result.budget_note[1:] + ".")
    if "val_psnr" in result.history:
        gain = result.val_psnr - result.copy_last_psnr
        verdict = "above" if gain > 0 else "NOT above"
        lines.append(
            f"Validation PSNR (1 sample, future frames only): model {result.val_psnr:.2f} dB vs "
            f"copy-last-frame {result.copy_last_psnr:.2f} dB ({gain:+.2f} dB, {verdict} the baseline).")
    lines.append(f"Run folder: {result.run.path}" + ("" if "val_psnr" in result.history else " (no epoch finished)"))
    return "\n".join(lines)
