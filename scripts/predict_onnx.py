"""Predicts future frames with an exported ONNX model: onnxruntime, numpy, pillow, imageio only.

The command lives in `keras_cvae.cli.predict_onnx` (installed as `keras-cvae-predict-onnx`);
this file keeps `python scripts/predict_onnx.py` working.
"""

import sys

from keras_cvae.cli.predict_onnx import main

if __name__ == "__main__":
    sys.exit(main())
