"""What both engines share when they cut windows: the seed, the window starts, the pixel scale.

Each has a NumPy and a TensorFlow flavour built on one definition, so the engines cannot
drift apart (their evaluation batches are bit-identical).
"""

import numpy as np

from keras_cvae.data.bair_tfrecord import SEQUENCE_LENGTH

# Dividing float32 pixels by a float32 255 rounds the same way in NumPy and TensorFlow.
PIXEL_SCALE = np.float32(255.0)


def seed_or_fresh(seed) -> int:
    """`seed` as an int, or a fresh random seed where it is None.

    Args:
        seed: An int, or None.
    """
    if seed is not None:
        return int(seed)
    return int(np.random.SeedSequence().generate_state(1)[0])


def window_start_stop(length: int) -> int:
    """One past the last window start: a `length`-step window starts in [0, 30 - length].

    Args:
        length: Steps per window.
    """
    return SEQUENCE_LENGTH - length + 1


def random_window_starts(rng: np.random.Generator, size: int, length: int) -> np.ndarray:
    """Uniform window starts (NumPy).

    Args:
        rng: The generator to draw from.
        size: Number of starts.
        length: Steps per window.
    """
    return rng.integers(0, window_start_stop(length), size=size)


def random_window_starts_tf(seed_pair, shape, length: int):
    """Uniform window starts (TensorFlow, stateless: a pure function of `seed_pair`).

    Args:
        seed_pair: int64 tensor [2].
        shape: Shape of the result ([] for one start).
        length: Steps per window.
    """
    import tensorflow as tf

    return tf.random.stateless_uniform(
        shape, seed=seed_pair, minval=0, maxval=window_start_stop(length), dtype=tf.int32
    )


def to_unit(pixels) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1] (NumPy).

    Args:
        pixels: uint8 array.
    """
    return np.divide(pixels, PIXEL_SCALE, dtype=np.float32)


def to_unit_tf(pixels):
    """uint8 pixels as float32 in [0, 1] (TensorFlow), bit-identical to `to_unit`.

    Args:
        pixels: uint8 tensor.
    """
    import tensorflow as tf

    return tf.cast(pixels, tf.float32) / PIXEL_SCALE
