"""Evaluate a trained run: `python scripts/evaluate.py`.

The command lives in `keras_cvae.cli.evaluate` (installed as `keras-cvae-evaluate`);
this file keeps `python scripts/evaluate.py` working.
"""

import sys

from keras_cvae.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
