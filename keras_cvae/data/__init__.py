"""Data: the BAIR TFRecord layout, the lab folder layout, TFDS, the generated default
dataset, and `make_dataset`, the pipeline the model trains on (tf.data, or NumPy without
TensorFlow)."""

from keras_cvae.data.errors import DataError, pipeline_errors
from keras_cvae.data.pipeline import (
    NumpyEngine,
    condition_statistics,
    describe_source,
    iterate_numpy,
    make_dataset,
    resolve_source,
)

__all__ = [
    "DataError",
    "NumpyEngine",
    "condition_statistics",
    "describe_source",
    "iterate_numpy",
    "make_dataset",
    "pipeline_errors",
    "resolve_source",
]
