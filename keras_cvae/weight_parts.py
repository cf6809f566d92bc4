"""A model's weights in parts small enough to travel: cast, split, and put back together.

Remote jobs often return files of limited size (e.g. 16 MiB each, 64 MiB in all), and the svg preset's
float32 weights are ~91 MB: as float16 in 15 MiB parts they come back in 4 files. Only the
trainable weights are cast; the model's state (normalisation statistics, the schedule clock,
random generators) is small and travels exact. A
manifest lists the parts, their order, a SHA-256 of the whole and the variables' paths
and shapes, so joining checks that nothing is missing, damaged or meant for another model.
"""

import hashlib
import io
import json
from pathlib import Path

import keras
import numpy as np

from keras_cvae.files import atomic_write_bytes, atomic_write_text

MANIFEST = "weights.json"
PART_BYTES = 15 * 2**20


class WeightPartsError(ValueError):
    """Parts that are missing, damaged or of another model."""


def split_weights(model, folder, dtype="float16", part_bytes=PART_BYTES) -> list:
    """Writes `model`'s weights (trainable floats cast to `dtype`) as parts of at most `part_bytes`.

    Args:
        model: A built Keras model.
        folder: Destination folder (created).
        dtype: Float type the trainable float weights travel as.
        part_bytes: Largest part size.

    Returns:
        The written paths, manifest last.
    """
    arrays = []
    trainable = {id(variable) for variable in model.trainable_weights}
    for variable in model.weights:
        value = np.asarray(keras.ops.convert_to_numpy(variable))
        cast = id(variable) in trainable and np.issubdtype(value.dtype, np.floating)
        arrays.append(value.astype(dtype) if cast else value)
    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    payload = buffer.getvalue()
    folder = Path(folder)
    names = []
    for index, start in enumerate(range(0, len(payload), part_bytes)):
        names.append(f"weights.part-{index:03d}")
        atomic_write_bytes(folder / names[-1], payload[start : start + part_bytes])
    manifest = {
        "parts": names,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "dtype": dtype,
        "variables": [[variable.path, list(variable.shape)] for variable in model.weights],
    }
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1))
    return [folder / name for name in names] + [folder / MANIFEST]


def join_weights(model, folder):
    """Loads the parts written by `split_weights` into `model` (cast to its dtypes).

    Args:
        model: A built model of the same architecture.
        folder: Folder holding the manifest and its parts.

    Raises:
        WeightPartsError: A part is missing, the whole does not match its checksum, or the
            weights do not fit `model`; the message names the file.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise WeightPartsError(f"{folder / MANIFEST}: not readable ({error})") from None
    pieces = []
    for name in manifest["parts"]:
        if not (folder / name).is_file():
            raise WeightPartsError(f"{folder / name}: missing part")
        pieces.append((folder / name).read_bytes())
    payload = b"".join(pieces)
    if hashlib.sha256(payload).hexdigest() != manifest["sha256"]:
        raise WeightPartsError(f"{folder}: the parts do not add up to the weights in {MANIFEST} "
                               "(a part is damaged, truncated or from another split)")
    shapes = [list(variable.shape) for variable in model.weights]
    if shapes != [shape for _, shape in manifest["variables"]]:
        raise WeightPartsError(f"{folder / MANIFEST}: weights of another architecture")
    with np.load(io.BytesIO(payload)) as stored:
        arrays = [stored[f"arr_{index}"] for index in range(len(shapes))]
    model.set_weights([array.astype(variable.dtype) for array, variable in zip(arrays, model.weights)])
