"""The on-disk layout of a training run, shared by train, evaluate and export.

    runs/<name>/
        run.json                      model and train configs, data source, condition stats
        model.keras                   newest model (weights incl. posterior and prior)
        checkpoints/epoch-NNNN.weights.h5   model + optimizer state after NNNN epochs
        checkpoints/epoch-NNNN.json         its position and the history up to it
        checkpoints/epoch-NNNN-step-SSSSSS.*  a mid-epoch backup: NNNN epochs and SSSSSS steps
        log.csv, curves.png, samples/epoch-NNNN.gif, tensorboard/
        eval/                         written by scripts/evaluate.py
        .lock                         held by the training process using the folder

A checkpoint exists once its JSON file does: the weights are written first, so a kill at
any moment leaves either a complete checkpoint or none. Temporary files of interrupted
writes are hidden (their names start with a dot) and match no reader's pattern.
"""

import contextlib
import json
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from keras_cvae.config import TrainConfig
from keras_cvae.files import atomic_save, atomic_write_text, claim_lock

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
LOG_FILE = "log.csv"
LOCK_FILE = ".lock"
CHECKPOINT_PATTERN = re.compile(r"^epoch-(\d{4,})(?:-step-(\d{6,}))?\.json$")


class RunError(ValueError):
    """A run folder is missing, incomplete or inconsistent."""


@dataclass(frozen=True, order=True)
class Checkpoint:
    """A saved training position: `epoch` epochs done and `step` steps into the next one.

    Args:
        directory: The checkpoints folder.
        epoch: Completed epochs.
        step: Steps done in epoch `epoch + 1` (0 for an end-of-epoch checkpoint).
    """

    epoch: int
    step: int
    directory: Path

    @property
    def name(self) -> str:
        return f"epoch-{self.epoch:04d}" + (f"-step-{self.step:06d}" if self.step else "")

    @property
    def weights_path(self) -> Path:
        return self.directory / f"{self.name}.weights.h5"

    @property
    def state_path(self) -> Path:
        return self.directory / f"{self.name}.json"

    def read_state(self) -> dict:
        """The JSON state; raises RunError naming the file if it is unreadable."""
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise RunError(f"{self.state_path}: not readable JSON ({error})") from None

    def remove(self):
        """Deletes the state first, so an interrupted removal leaves no checkpoint."""
        self.state_path.unlink(missing_ok=True)
        self.weights_path.unlink(missing_ok=True)


@dataclass(frozen=True)
class RunFolder:
    """Paths and records of one run.

    Args:
        path: The run directory.
    """

    path: Path

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    def write_info(self, info: dict):
        """Writes run.json (atomically)."""
        atomic_write_text(self.run_file, json.dumps(info, indent=2, sort_keys=True))

    def read_info(self) -> dict:
        """Reads run.json; raises RunError naming the file if it is missing or unreadable."""
        if not self.path.is_dir():
            raise RunError(f"{self.path}: run folder does not exist")
        if not self.run_file.is_file():
            raise RunError(f"{self.run_file}: missing; is {self.path} a training run folder?")
        try:
            return json.loads(self.run_file.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise RunError(f"{self.run_file}: not readable JSON ({error})") from None

    def model_config(self):
        """The run's model config, of its task's config class."""
        from keras_cvae import tasks

        info = self.read_info()
        return tasks.task_of(info).model_config(info)

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.read_info()["train"])

    @property
    def log_file(self) -> Path:
        return self.path / LOG_FILE

    def write_log(self, history: dict):
        """Writes log.csv, one row per epoch (numbered from 1), from a checkpoint's history."""
        names = sorted(history)
        rows = zip(*(history[name] for name in names))
        lines = [",".join(["epoch", *names])]
        lines += [",".join([str(epoch), *map(repr, row)]) for epoch, row in enumerate(rows, start=1)]
        atomic_write_text(self.log_file, "\n".join(lines) + "\n")

    def checkpoint(self, epoch: int, step: int = 0) -> Checkpoint:
        return Checkpoint(epoch, step, self.checkpoint_dir)

    def checkpoints(self) -> list:
        """Complete checkpoints (state JSON and weights present), oldest first."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = []
        for path in self.checkpoint_dir.iterdir():
            match = CHECKPOINT_PATTERN.match(path.name)
            if match:
                checkpoint = self.checkpoint(int(match.group(1)), int(match.group(2) or 0))
                if checkpoint.weights_path.is_file():
                    found.append(checkpoint)
        return sorted(found)

    def write_checkpoint(self, checkpoint: Checkpoint, save_weights, state: dict):
        """Writes the weights, then the state that makes the checkpoint exist.

        Args:
            checkpoint: Where.
            save_weights: Callable writing the weights file at the path it is given.
            state: JSON-serialisable training state (position, history, ...).
        """
        atomic_save(checkpoint.weights_path, save_weights)
        atomic_write_text(checkpoint.state_path, json.dumps(state, indent=1))

    def prune_checkpoints(self, keep: int):
        """Keeps the `keep` newest end-of-epoch checkpoints and a backup newer than them."""
        checkpoints = self.checkpoints()
        epochs = [c for c in checkpoints if c.step == 0]
        newest = checkpoints[-1] if checkpoints else None
        for checkpoint in checkpoints:
            stale_epoch = checkpoint.step == 0 and checkpoint not in epochs[-keep:]
            stale_backup = checkpoint.step != 0 and checkpoint != newest
            if stale_epoch or stale_backup:
                checkpoint.remove()

    def remove_temporaries(self):
        """Deletes what interrupted writes left: hidden files other than the lock."""
        for folder in (self.path, self.checkpoint_dir, self.samples_dir):
            if folder.is_dir():
                for path in folder.iterdir():
                    if path.name.startswith(".") and path.name != LOCK_FILE and path.is_file():
                        path.unlink(missing_ok=True)

    def clear(self):
        """Removes everything in the folder but the lock: a run that never saved a
        checkpoint holds nothing to keep, and starts over."""
        for path in self.path.iterdir():
            if path.name == LOCK_FILE:
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    @contextlib.contextmanager
    def lock(self):
        """Holds an exclusive advisory lock on the folder (creating it) while in the block.

        The operating system drops the lock when the process dies, `kill -9` included, so
        a crash never leaves the folder locked.

        Raises:
            RunError: Another process holds the lock, or the folder cannot be written.
        """
        created_folder = not self.path.exists()
        lock_path = self.path / LOCK_FILE
        created_lock = not lock_path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            stream = open(lock_path, "a+")
        except OSError as error:  # a read-only file system, no permission
            raise RunError(f"{self.path}: cannot be written ({error.strerror}); a run needs a "
                           "writable folder: copy it somewhere writable to resume it") from None
        with stream:
            owner = claim_lock(stream)
            if owner is not None:
                raise RunError(f"{self.path}: in use by another training process (pid {owner}); "
                               "wait for it to finish or choose another --out")
            try:
                yield
            finally:
                # A folder that did not become a run is left as it was found.
                if created_lock and self.path.is_dir() and not self.run_file.exists():
                    lock_path.unlink(missing_ok=True)
                    if created_folder and not any(self.path.iterdir()):
                        self.path.rmdir()

    def load_model(self):
        """Loads model.keras (no optimizer); raises RunError if it is missing or broken."""
        import keras

        from keras_cvae import tasks

        tasks.register_models()
        self.read_info()
        if not self.model_file.is_file():
            raise RunError(f"{self.model_file}: missing; the run has not finished an epoch yet")
        if not zipfile.is_zipfile(self.model_file):
            # Keras reports a truncated archive as "File not found".
            raise RunError(f"{self.model_file}: not a complete .keras archive (truncated or damaged)")
        try:
            return keras.saving.load_model(self.model_file, compile=False)
        except Exception as error:  # Keras raises many types for a damaged archive.
            raise RunError(f"{self.model_file}: cannot be loaded ({error})") from None


def latest_run(root="runs") -> RunFolder:
    """The most recently modified run folder under `root` that has a run.json.

    Args:
        root: Folder holding run folders.
    """
    root = Path(root)
    candidates = [p for p in root.glob("*") if (p / RUN_FILE).is_file()] if root.is_dir() else []
    if not candidates:
        raise RunError(f"{root}: no training runs found; train one with scripts/train.py")
    return RunFolder(max(candidates, key=lambda p: (p / RUN_FILE).stat().st_mtime))
