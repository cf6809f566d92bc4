"""Data: every dataset layout, and `make_dataset`, the batches the model trains on.

Layouts: BAIR TFRecords, lab folders, TFDS and the generated default dataset (see
`sources`); engines: tf.data or NumPy without TensorFlow (see `pipeline`).
"""

from keras_cvae.data.errors import DataError
from keras_cvae.data.pipeline import NumpyEngine, condition_statistics, iterate_numpy, make_dataset
from keras_cvae.data.sources import describe_source, resolve_source
from keras_cvae.data.tf_pipeline import pipeline_errors

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
