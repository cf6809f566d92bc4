"""The on-disk layout of a training run, shared by train, evaluate and export.

    runs/<name>/
        run.json                      model and train configs, data source, condition stats
        model.keras                   newest model (weights incl. posterior and prior)
        checkpoints/epoch-NNNN.weights.h5   model + optimizer state (iteration count included)
        checkpoints/epoch-NNNN.json   epoch number and history up to it
        log.csv, curves.png, samples/epoch-NNNN.gif, tensorboard/
        eval/                         written by scripts/evaluate.py
"""

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from keras_cvae.config import ModelConfig, TrainConfig

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
CHECKPOINT_PATTERN = re.compile(r"epoch-(\d{4,})\.weights\.h5$")


class RunError(ValueError):
    """A run folder is missing, incomplete or inconsistent."""


def atomic_write_text(path, text):
    """Writes `text` to `path` through a temporary file in the same folder and a rename.

    Args:
        path: Destination file.
        text: Content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_save(path, save):
    """Calls `save(temporary_path)` then renames the result onto `path`.

    Keras picks the file format from the suffix, so the temporary name keeps it.

    Args:
        path: Destination file.
        save: Callable writing a file at the path it is given.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        save(str(temporary))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


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

    def model_config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.read_info()["model"])

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.read_info()["train"])

    def checkpoints(self) -> list:
        """Checkpoint weight files, oldest first."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = [p for p in self.checkpoint_dir.iterdir() if CHECKPOINT_PATTERN.search(p.name)]
        return sorted(found, key=lambda p: int(CHECKPOINT_PATTERN.search(p.name).group(1)))

    def checkpoint_path(self, epoch: int) -> Path:
        return self.checkpoint_dir / f"epoch-{epoch:04d}.weights.h5"

    def load_model(self):
        """Loads model.keras (no optimizer); raises RunError if it is missing or broken."""
        import keras

        from keras_cvae import model as _registers_svg  # noqa: F401

        self.read_info()
        if not self.model_file.is_file():
            raise RunError(f"{self.model_file}: missing; the run has not finished an epoch yet")
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
