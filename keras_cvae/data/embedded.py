"""The default dataset: generated once with the pushing simulator and cached on disk.

Location: `$KERAS_CVAE_DATA` if set, else `$XDG_CACHE_HOME/keras_cvae/pushing_v1`, else
`~/.cache/keras_cvae/pushing_v1`. It is built into a temporary sibling directory and
renamed into place; a marker file written last says it is complete.
"""

import json
import os
import shutil
from pathlib import Path

from keras_cvae.data.errors import DataError

DATASET_NAME = "pushing_v1"
ENV_VAR = "KERAS_CVAE_DATA"
MARKER = "COMPLETE.json"
N_TRAIN = 1280  # 5 files of 256; the second file is the validation split
N_TEST = 256
SEED = 0


def default_data_dir() -> Path:
    """Where the default dataset lives (see the module docstring)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "keras_cvae" / DATASET_NAME


def _expected_marker() -> dict:
    return {"name": DATASET_NAME, "n_train": N_TRAIN, "n_test": N_TEST, "seed": SEED}


def is_complete(path) -> bool:
    """True if `path` holds a finished build of the default dataset."""
    marker = Path(path) / MARKER
    try:
        return json.loads(marker.read_text()) == _expected_marker()
    except (OSError, ValueError):
        return False


def ensure_embedded_dataset(progress: bool = True, workers=None) -> Path:
    """Returns the default dataset's directory, generating it first if needed.

    Args:
        progress: Show a progress bar while generating.
        workers: Simulator processes (default: all cores).

    Returns:
        The dataset root (it holds `train/` and `test/`).
    """
    from keras_cvae.data.generate import write_generated_dataset

    target = default_data_dir()
    if is_complete(target):
        return target
    if target.exists() and any(target.iterdir()):
        raise DataError(
            f"{target}: exists but is not a complete {DATASET_NAME} build (no valid {MARKER});"
            f" remove it or set {ENV_VAR} to another directory"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.building-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        if progress:
            print(f"Generating the default dataset into {target} (once) ...")
        write_generated_dataset(
            tmp, n_train=N_TRAIN, n_test=N_TEST, seed=SEED, workers=workers, progress=progress
        )
        (tmp / MARKER).write_text(json.dumps(_expected_marker()))
        if target.exists():
            target.rmdir()  # empty, checked above
        try:
            os.replace(tmp, target)
        except OSError:
            if is_complete(target):  # another process finished first
                return target
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
