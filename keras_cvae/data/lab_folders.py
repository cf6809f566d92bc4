"""The lab folder layout under the name scripts and tests use: `lab_layout` and `convert`.

The readers and writers live in `lab_layout` and the converters in `convert`, which
imports `lab_layout`; naming both here (not in `lab_layout`) keeps the imports acyclic.
"""

from keras_cvae.data.convert import convert_dataset, lab_to_tfrecord, tfrecord_to_lab
from keras_cvae.data.lab_layout import (
    ACTIONS_CSV,
    ENDEFFECTOR_CSV,
    PNG_SIGNATURE,
    SPLIT_DIRS,
    is_lab_root,
    list_sequences,
    list_trajectories,
    read_csv,
    read_png,
    read_sequence,
    read_window_tf,
    write_sequence,
)

__all__ = [
    "ACTIONS_CSV",
    "ENDEFFECTOR_CSV",
    "PNG_SIGNATURE",
    "SPLIT_DIRS",
    "convert_dataset",
    "is_lab_root",
    "lab_to_tfrecord",
    "list_sequences",
    "list_trajectories",
    "read_csv",
    "read_png",
    "read_sequence",
    "read_window_tf",
    "tfrecord_to_lab",
    "write_sequence",
]
