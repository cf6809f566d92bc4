"""Where an export may go: a new folder, or an earlier export that it replaces."""

from pathlib import Path

from keras_cvae.export.config import ExportError
from keras_cvae.onnx_protocol import METADATA_FILE, PREDICTION_ONNX, SAVED_MODEL_DIR, STEP_ONNX

EXPORT_FILES = (SAVED_MODEL_DIR, PREDICTION_ONNX, STEP_ONNX, METADATA_FILE)


def check_destination(out_dir):
    """Refuses an existing `out_dir` that is not an earlier export: replacing it would
    delete what the exporter did not write.

    Args:
        out_dir: The export's destination folder.

    Raises:
        ExportError: `out_dir` is a file, or a folder holding anything but an export's
            files (`EXPORT_FILES`), or an export's files without its metadata.json.
    """
    out_dir = Path(out_dir)
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ExportError(f"{out_dir}: exists and is not a folder; choose another --out")
    names = sorted(path.name for path in out_dir.iterdir())
    foreign = [name for name in names if name not in EXPORT_FILES]
    if foreign or (names and METADATA_FILE not in names):
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "") if foreign else "no metadata.json"
        raise ExportError(f"{out_dir}: exists and is not an export folder ({shown}); an export "
                          "replaces only an earlier export: choose another --out")
