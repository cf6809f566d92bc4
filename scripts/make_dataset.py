"""Generates a robot-pushing dataset with the simulator, in the BAIR TFRecord layout.

The command lives in `keras_cvae.cli.make_dataset` (installed as `keras-cvae-make-dataset`);
this file keeps `python scripts/make_dataset.py` working.
"""

import sys

from keras_cvae.cli.make_dataset import main

if __name__ == "__main__":
    sys.exit(main())
