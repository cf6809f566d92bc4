"""The embedded datasets: generated once and cached on disk, chosen by name.

- "pushing" (the default): the pushing simulator, standing in for BAIR.
- "bouncing": the stochastic toy (`data.bouncing`), where the latent has work to do.

Location: `$XDG_CACHE_HOME/keras_cvae/<name>_v1`, else `~/.cache/keras_cvae/<name>_v1`;
the pushing dataset goes to `$KERAS_CVAE_DATA` instead if that is set. A dataset is built
into a temporary sibling directory and renamed into place (`files.staged_directory`); a
marker file written last says it is complete.
"""

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from keras_cvae.data.errors import DataError
from keras_cvae.data.generate import write_generated_dataset
from keras_cvae.files import atomic_write_text, staged_directory

ENV_VAR = "KERAS_CVAE_DATA"
MARKER = "COMPLETE.json"
DEFAULT = "pushing"


@dataclass(frozen=True)
class EmbeddedDataset:
    """One embedded dataset: what generates it and how much.

    Args:
        world: The generator, a world of `data.generate`.
        folder: Its folder in the cache (the name plus a version).
        n_train: Train sequences in files of 256; the second file is the validation split.
        n_test: Test sequences.
        seed: The generator's seed.
    """

    world: str
    folder: str
    n_train: int
    n_test: int
    seed: int = 0

    @property
    def marker(self) -> dict:
        """What the marker file of a complete build holds."""
        return {"name": self.folder, "n_train": self.n_train, "n_test": self.n_test, "seed": self.seed}


def embedded_datasets() -> dict:
    """{name: EmbeddedDataset} of every dataset `--data NAME` can ask for."""
    return {
        "pushing": EmbeddedDataset("pushing", "pushing_v1", n_train=1280, n_test=256),
        "bouncing": EmbeddedDataset("bouncing", "bouncing_v3", n_train=2560, n_test=256),
    }


def cache_root() -> Path:
    """The folder of keras-cvae's generated datasets: `$XDG_CACHE_HOME/keras_cvae`, else
    `~/.cache/keras_cvae`."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "keras_cvae"


def default_data_dir(name: str = DEFAULT) -> Path:
    """Where the embedded dataset `name` lives (see the module docstring).

    Args:
        name: A key of `embedded_datasets()`.
    """
    if name == DEFAULT and os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return cache_root() / embedded_datasets()[name].folder


def is_complete(path, marker=None) -> bool:
    """True if `path` holds a finished build whose marker is `marker` (default: the
    pushing dataset's)."""
    try:
        expected = marker or embedded_datasets()[DEFAULT].marker
        return json.loads((Path(path) / MARKER).read_text()) == expected
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


def ensure_embedded_dataset(progress: bool = True, workers=None, name: str = DEFAULT) -> Path:
    """Returns an embedded dataset's directory, generating it first if needed.

    Args:
        progress: Show a progress bar while generating.
        workers: Simulator processes (default: all cores).
        name: A key of `embedded_datasets()`.

    Returns:
        The dataset root (it holds `train/` and `test/`).

    Raises:
        DataError: The directory holds something that is not a complete build.
    """
    dataset = embedded_datasets()[name]
    target = default_data_dir(name)

    def write(building):
        if progress:
            print(f"Generating the embedded {name} dataset into {target} (once) ...")
        write_generated_dataset(
            building, n_train=dataset.n_train, n_test=dataset.n_test, seed=dataset.seed,
            workers=workers, progress=progress, world=dataset.world,
        )

    hint = f"set {ENV_VAR} to another directory" if name == DEFAULT else "remove it and run again"
    return ensure_cached(target, dataset.marker, write, hint)
