"""The default dataset: generated once with the pushing simulator and cached on disk.

Location: `$KERAS_CVAE_DATA` if set, else `$XDG_CACHE_HOME/keras_cvae/pushing_v1`, else
`~/.cache/keras_cvae/pushing_v1`. It is built into a temporary sibling directory and
renamed into place (`files.staged_directory`); a marker file written last says it is
complete.
"""

import contextlib
import json
import os
from pathlib import Path

from keras_cvae.data.errors import DataError
from keras_cvae.data.generate import write_generated_dataset
from keras_cvae.files import atomic_write_text, staged_directory

DATASET_NAME = "pushing_v1"
ENV_VAR = "KERAS_CVAE_DATA"
MARKER = "COMPLETE.json"
N_TRAIN = 1280  # 5 files of 256; the second file is the validation split
N_TEST = 256
SEED = 0


def cache_root() -> Path:
    """The folder of keras-cvae's generated datasets: `$XDG_CACHE_HOME/keras_cvae`, else
    `~/.cache/keras_cvae`."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "keras_cvae"


def default_data_dir() -> Path:
    """Where the default dataset lives (see the module docstring)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return cache_root() / DATASET_NAME


def _expected_marker() -> dict:
    return {"name": DATASET_NAME, "n_train": N_TRAIN, "n_test": N_TEST, "seed": SEED}


def is_complete(path, marker=None) -> bool:
    """True if `path` holds a finished build whose marker is `marker` (default: this dataset's)."""
    try:
        return json.loads((Path(path) / MARKER).read_text()) == (marker or _expected_marker())
    except (OSError, ValueError):
        return False


def ensure_cached(target, marker: dict, write, hint: str) -> Path:
    """Returns `target` once it holds a complete build, calling `write(folder)` first if needed.

    `write` fills a temporary sibling folder that is renamed into place with the marker
    file written last. Processes that build at the same time each build their own copy;
    the first to finish puts its copy in place and the others return it.

    Args:
        target: The dataset folder.
        marker: What the marker file of a complete build holds.
        write: Callable filling the folder it is given.
        hint: How to choose another folder, for the error message.

    Raises:
        DataError: `target` holds something that is not a complete build.
    """
    target = Path(target)
    if is_complete(target, marker):
        return target
    if target.exists() and any(target.iterdir()):
        raise DataError(
            f"{target}: exists but is not a complete {marker['name']} build (no valid {MARKER});"
            f" remove it or {hint}"
        )
    if target.exists():
        # Empty, or completed by another process since the check above (then rmdir fails
        # and staged_directory reports it as existing).
        with contextlib.suppress(OSError):
            target.rmdir()
    try:
        with staged_directory(target) as building:
            write(building)
            atomic_write_text(building / MARKER, json.dumps(marker))
    except FileExistsError:
        if is_complete(target, marker):  # another process finished first
            return target
        raise
    return target


def ensure_embedded_dataset(progress: bool = True, workers=None) -> Path:
    """Returns the default dataset's directory, generating it first if needed.

    Args:
        progress: Show a progress bar while generating.
        workers: Simulator processes (default: all cores).

    Returns:
        The dataset root (it holds `train/` and `test/`).

    Raises:
        DataError: The directory holds something that is not a complete build.
    """
    target = default_data_dir()

    def write(building):
        if progress:
            print(f"Generating the default dataset into {target} (once) ...")
        write_generated_dataset(
            building, n_train=N_TRAIN, n_test=N_TEST, seed=SEED, workers=workers, progress=progress
        )

    return ensure_cached(target, _expected_marker(), write, f"set {ENV_VAR} to another directory")
