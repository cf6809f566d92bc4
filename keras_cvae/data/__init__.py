"""Data: the BAIR TFRecord layout, the lab folder layout, TFDS, the generated default
dataset, and `make_dataset`, the tf.data pipeline the model trains on."""

from keras_cvae.data.errors import DataError
from keras_cvae.data.pipeline import (
    condition_statistics,
    describe_source,
    make_dataset,
    resolve_source,
)

__all__ = ["DataError", "condition_statistics", "describe_source", "make_dataset", "resolve_source"]
