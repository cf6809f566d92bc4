"""Exports a trained run as a SavedModel, two ONNX files and metadata.json.

What the export folder holds and the tensors' names are in `keras_cvae.onnx_protocol`; the
graphs of each task come from the task (`Task.export_graphs`).
"""

from keras_cvae.export.checks import check_export
from keras_cvae.export.config import ExportConfig, ExportError
from keras_cvae.export.graphs import ExportGraphs
from keras_cvae.export.run import export_model, export_run

__all__ = [
    "ExportConfig",
    "ExportError",
    "ExportGraphs",
    "check_export",
    "export_model",
    "export_run",
]
