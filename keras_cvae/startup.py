"""Choosing the Keras backend, before anything imports Keras."""

import os
import sys
from typing import Optional

BACKENDS = ("tensorflow", "jax")


def select_backend(name: Optional[str] = None) -> str:
    """Chooses the Keras backend and starts TensorFlow quietly; call it before anything
    imports Keras or TensorFlow (see `tensorflow_noise`).

    Args:
        name: "tensorflow" or "jax"; None keeps $KERAS_BACKEND, else TensorFlow.

    Returns:
        The backend's name.

    Raises:
        ValueError: An unknown name, or Keras is already imported with another backend.
    """
    name = name or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != name:
            raise ValueError(f"Keras is already running on {current}; cannot switch to {name}")
    os.environ["KERAS_BACKEND"] = name
    # Either backend's data pipeline imports TensorFlow where it is installed.
    from keras_cvae.tensorflow_noise import start_tensorflow_quietly

    start_tensorflow_quietly()
    return name
