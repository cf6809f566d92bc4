"""Train the SVG conditional VAE: `python scripts/train.py --kl cyclical`.

The command lives in `keras_cvae.cli.train` (installed as `keras-cvae-train`);
this file keeps `python scripts/train.py` working.
"""

import sys

from keras_cvae.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
