"""A stochastic toy: one disc bouncing around a dark square, changing direction at random.

The past does not determine its future. The disc keeps its speed and moves along one of
a few headings (by default the four diagonals); at every step it may turn to another
heading drawn at random (probability `turn_probability`), and when it hits a wall it
leaves along a random heading into the room rather than the mirrored one. Two frames of
context give its position and velocity; which heading it takes at the next random turn
is exactly what SVG's latent z_t has to carry. It plays the role Stochastic Moving MNIST
plays in the SVG paper, and as there a turn has few outcomes, so a handful of samples can
cover them and best-of-N measures whether the latent picks among them.

Sequences have the layout of the BAIR records, so every reader, pipeline and model of
the pushing data works on them unchanged:

    image_aux1       uint8   [T, 64, 64, 3]  the same frames as image_main
    image_main       uint8   [T, 64, 64, 3]  the disc (`BouncingConfig.color`), anti-aliased
    action           float32 [T, 4]          zeros: nothing tells the model where it turns
    endeffector_pos  float32 [T, 3]          zeros

Everything is deterministic in (seed, index): sequence `index` draws all its randomness
from `np.random.default_rng([seed, index])`. `bouncing_sequence` also returns the disc's
path ("position" [T, 2], "turned" [T] bool) for tests and figures.
"""

import math
from dataclasses import dataclass

import numpy as np

from keras_cvae.data import bair_tfrecord as bair


@dataclass(frozen=True)
class BouncingConfig:
    """The toy's geometry and randomness.

    Args:
        length: Frames per sequence.
        size: Height and width of a frame in pixels.
        radius: Radius of the disc in pixels.
        speed: Distance the disc moves per frame, in pixels.
        headings: Directions the disc can move in, evenly spaced and offset by half a
            spacing from the axes (4: the diagonals).
        turn_probability: Chance per step of turning to another heading, drawn uniformly.
        background: Grey level of the background, 0..255.
        color: The disc's colour (RGB, 0..255). One colour for every sequence, as Stochastic
            Moving MNIST's digits are all white: a colour that varies is something more
            for a small model to learn to carry, and nothing the latent has to do with.
    """

    length: int = bair.SEQUENCE_LENGTH
    size: int = bair.IMAGE_SIZE
    radius: float = 9.0
    speed: float = 3.5
    headings: int = 4
    turn_probability: float = 0.15
    background: int = 16
    color: tuple = (250, 210, 60)

    def heading_angles(self) -> np.ndarray:
        """The headings' angles in radians: float64 [headings]."""
        return (np.arange(self.headings) + 0.5) * (2.0 * math.pi / self.headings)


def _random_heading(position, low, high, current, rng, config: BouncingConfig) -> int:
    """Another heading than `current`, drawn among those pointing away from every wall the
    disc touches."""
    angles = config.heading_angles()
    dx, dy = np.cos(angles), np.sin(angles)
    allowed = (
        ((position[0] > low) | (dx > 0.2)) & ((position[0] < high) | (dx < -0.2))
        & ((position[1] > low) | (dy > 0.2)) & ((position[1] < high) | (dy < -0.2))
    )
    allowed[current] = False
    return int(rng.choice(np.flatnonzero(allowed)))


def disc_path(rng: np.random.Generator, config: BouncingConfig = BouncingConfig()):
    """The disc's centre per frame and the steps where it turned at random or at a wall.

    Args:
        rng: The sequence's random generator.
        config: The toy's settings.

    Returns:
        (position float64 [T, 2] as (x, y) pixels, turned bool [T]); turned[t] says the
        move from frame t-1 to frame t took a new direction.
    """
    low, high = config.radius, config.size - 1 - config.radius
    angles = config.heading_angles()
    position = rng.uniform(low + config.speed, high - config.speed, size=2)
    heading = int(rng.integers(config.headings))
    positions, turned = [position.copy()], [False]
    for _ in range(1, config.length):
        turn = rng.random() < config.turn_probability
        if turn:
            heading = _random_heading(position, -np.inf, np.inf, heading, rng, config)
        step = config.speed * np.array([math.cos(angles[heading]), math.sin(angles[heading])])
        candidate = position + step
        if np.any(candidate < low) or np.any(candidate > high):
            position = np.clip(candidate, low, high)
            heading = _random_heading(position, low, high, heading, rng, config)
            turn = True
        else:
            position = candidate
        positions.append(position.copy())
        turned.append(turn)
    return np.stack(positions), np.array(turned)


def render_discs(positions, color, config: BouncingConfig = BouncingConfig()) -> np.ndarray:
    """Draws one anti-aliased disc per frame: uint8 [T, size, size, 3].

    Args:
        positions: [T, 2] centres as (x, y) pixels.
        color: Three values in 0..255.
        config: The toy's settings.
    """
    grid = np.arange(config.size, dtype=np.float64)
    dx = grid[None, None, :] - positions[:, 0, None, None]
    dy = grid[None, :, None] - positions[:, 1, None, None]
    coverage = np.clip(config.radius + 0.5 - np.sqrt(dx * dx + dy * dy), 0.0, 1.0)[..., None]
    color = np.asarray(color, np.float64)
    frames = config.background + coverage * (color - config.background)
    return np.round(frames).astype(np.uint8)


def bouncing_sequence(seed: int, index: int, config: BouncingConfig = BouncingConfig()) -> dict:
    """Sequence `index` of the toy dataset with seed `seed`.

    Args:
        seed: The dataset's seed.
        index: The sequence's index.
        config: The toy's settings.

    Returns:
        The four BAIR keys (see the module docstring) plus "position" and "turned".
    """
    rng = np.random.default_rng([seed, index])
    positions, turned = disc_path(rng, config)
    frames = render_discs(positions, config.color, config)
    zeros = np.zeros((config.length, 4), np.float32)
    return {
        "image_aux1": frames,
        "image_main": frames.copy(),
        "action": zeros,
        "endeffector_pos": zeros[:, :3].copy(),
        "position": positions,
        "turned": turned,
    }
