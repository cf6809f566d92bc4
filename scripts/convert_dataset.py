"""Converts a dataset between the BAIR TFRecord layout and the course lab folder layout.

The command lives in `keras_cvae.cli.convert_dataset` (installed as `keras-cvae-convert-dataset`);
this file keeps `python scripts/convert_dataset.py` working.
"""

import sys

from keras_cvae.cli.convert_dataset import main

if __name__ == "__main__":
    sys.exit(main())
