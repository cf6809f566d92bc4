"""Video prediction from an exported model with onnxruntime, numpy, pillow and imageio only.

Nothing here imports TensorFlow or Keras (a test checks it), so a folder written by
`scripts/export.py` can be used on a machine that has only
`pip install onnxruntime numpy pillow imageio`. The accepted input files and the written
outputs are described in `keras_cvae.onnx_files`.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from keras_cvae import tasks
from keras_cvae.onnx_files import InferenceError
from keras_cvae.onnx_protocol import METADATA_FILE
from keras_cvae.paths import why_not_creatable


@dataclass(frozen=True)
class PredictConfig:
    """One prediction request of `predict_files`.

    Args:
        model_dir: Folder written by the export (metadata.json, model.onnx).
        context: Context sources: PNG paths, one folder of PNGs, one GIF or one .npz
            (an export whose context is one frame: its PNG).
        conditions: What the export's task takes as conditions, e.g. one 7-column CSV, the
            actions/end-effector CSV pair, or their folder (SVG), or the pose-label PNGs of
            every frame, or their folder (pose).
        out_dir: Folder receiving predictions.npz, the GIFs and the PNGs.
        samples: Number of futures drawn (one noise draw each).
        seed: Seed of the noise.
        fps: Frames per second of the GIFs.
    """

    model_dir: str
    context: tuple
    conditions: tuple
    out_dir: str = "predictions"
    samples: int = 1
    seed: int = 0
    fps: float = 4.0

    def __post_init__(self):
        if not isinstance(self.samples, int) or self.samples < 1:
            raise InferenceError(f"samples (--samples) must be at least 1, got {self.samples}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InferenceError(f"seed (--seed) must be at least 0, got {self.seed}")
        if not self.fps > 0 or self.fps == float("inf"):
            raise InferenceError(f"fps (--fps) must be a positive number, got {self.fps}")


def read_metadata(model_dir) -> dict:
    """An export folder's metadata.json content.

    Raises:
        InferenceError: Missing or unreadable file.
    """
    path = Path(model_dir) / METADATA_FILE
    if not path.is_file():
        raise InferenceError(f"{path}: missing; is {model_dir} an export folder?")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InferenceError(f"{path}: not export metadata ({error!r})") from None


def predict_files(config):
    """Reads the inputs, predicts `config.samples` futures with onnxruntime, writes them.

    The export's task (metadata.json) reads its inputs and rolls them out.

    Args:
        config: A `PredictConfig`.

    Returns:
        (frames [S, frames predicted, H, W, 3] float32, list of written paths).
    """
    reason = why_not_creatable(config.out_dir)
    if reason is not None:
        raise InferenceError(f"{config.out_dir}: cannot create the output folder ({reason})")
    metadata = read_metadata(config.model_dir)
    task = tasks.task_of(metadata)
    given = _task_of_conditions(config.conditions)
    if given is not None and given != task.name:
        raise InferenceError(f"{config.model_dir}: a {task.name} export, which takes {task.inputs_help}; the "
                             f"conditions given ({config.conditions[0]}) are the inputs of a {given} export")
    return task.predict_files(config, metadata)


def _task_of_conditions(sources):
    """The task whose conditions `sources` are (by their files' suffixes), or None when it
    cannot tell (the task's file readers then say what is wrong).

    Args:
        sources: The paths given as conditions.
    """
    names = []
    for source in map(Path, sources):
        names += [p.name for p in source.iterdir()] if source.is_dir() else [source.name]
    suffixes = {Path(name).suffix.lower() for name in names}
    matching = [task.name for task in tasks.REGISTRY.values() if task.recognises_conditions(suffixes)]
    return matching[0] if len(matching) == 1 else None
