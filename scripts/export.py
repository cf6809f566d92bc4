"""Exports a training run as a SavedModel, ONNX files (whole prediction and single step) and metadata.json.

The command lives in `keras_cvae.cli.export` (installed as `keras-cvae-export`);
this file keeps `python scripts/export.py` working.
"""

import sys

from keras_cvae.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
