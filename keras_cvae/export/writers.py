"""Writes the exported files: the SavedModel, the ONNX files and metadata.json."""

import json
import warnings

import keras
import onnx
import tf2onnx

# Keras ships the numpy-2 compatibility fixes tf2onnx 1.17 still lacks.
from keras.src.export.tf2onnx_lib import patch_tf2onnx

from keras_cvae.files import atomic_save, atomic_write_text, staged_directory


def write_saved_model(model, path, predict):
    """Writes a SavedModel whose "serving_default" signature is the whole prediction.

    Args:
        model: The exported model.
        path: Destination folder (must not exist).
        predict: The signed prediction tf.function (`ExportGraphs.predict`).
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", predict)
    with staged_directory(path) as temporary:
        archive.write_out(str(temporary), verbose=False)


def write_onnx(function, path, opset):
    """Converts a tf.function with a named input signature to an ONNX file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # np.object probe inside the patch
        patch_tf2onnx()
    model_proto, _ = tf2onnx.convert.from_function(
        function, input_signature=function.input_signature, opset=opset
    )
    _name_batch_dimension(model_proto)
    atomic_save(path, lambda temporary: onnx.save(model_proto, temporary))


def _name_batch_dimension(model_proto):
    """Calls the dynamic first dimension of every graph input and output "batch"."""
    for value in [*model_proto.graph.input, *model_proto.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"


def write_metadata(path, metadata):
    """Writes metadata.json.

    Args:
        path: Destination file.
        metadata: The content, from `metadata.build_metadata`.
    """
    atomic_write_text(path, json.dumps(metadata, indent=2) + "\n")
