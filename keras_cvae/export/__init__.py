"""Exports a trained SVG run as a SavedModel, two ONNX files and metadata.json.

What the export folder holds, the tensors' names and shapes and the step protocol are in
`keras_cvae.onnx_protocol`.
"""

from keras_cvae.export.checks import check_export, check_inputs
from keras_cvae.export.config import ExportConfig, ExportError
from keras_cvae.export.graphs import prediction_function
from keras_cvae.export.run import export_model, export_run
from keras_cvae.export.writers import write_prediction_onnx, write_step_onnx
from keras_cvae.onnx_protocol import run_step_onnx

__all__ = [
    "ExportConfig",
    "ExportError",
    "check_export",
    "check_inputs",
    "export_model",
    "export_run",
    "prediction_function",
    "run_step_onnx",
    "write_prediction_onnx",
    "write_step_onnx",
]
