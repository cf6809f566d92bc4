"""A procedural dancer: videos of an articulated figure and their pose-label images, in NumPy.

Each video has its own figure (limb colours, build), background texture and lighting; the
joint angles and the body's position are sums of sinusoids, so the motion is smooth and
never repeats exactly. Frames show the figure as thick striped limbs on a textured
background under slowly changing light; the label of a frame is its skeleton drawn in
fixed colours on black (the lab's pose images). Everything is rasterised at once for all
frames of a video (distances from every pixel to every limb segment), deterministically
from a seed.
"""

import numpy as np

HEIGHT, WIDTH = 32, 64
# (parent joint, child joint) of each limb, drawn in this order (the far limbs first).
JOINTS = ("hip", "neck", "head", "l_elbow", "l_hand", "r_elbow", "r_hand",
          "l_knee", "l_foot", "r_knee", "r_foot")
LIMBS = (("hip", "l_knee"), ("l_knee", "l_foot"), ("neck", "l_elbow"), ("l_elbow", "l_hand"),
         ("hip", "neck"), ("neck", "head"),
         ("hip", "r_knee"), ("r_knee", "r_foot"), ("neck", "r_elbow"), ("r_elbow", "r_hand"))
# Label colours per limb, as in pose-estimation renderings: left limbs warm, right cool.
LABEL_COLORS = np.array([
    [255, 170, 0], [255, 85, 0], [255, 255, 0], [170, 255, 0],
    [255, 0, 85], [255, 0, 255],
    [0, 170, 255], [0, 85, 255], [0, 255, 170], [0, 255, 85],
], np.float32) / 255.0
# Angle (radians, 0 = straight down, counter-clockwise) and length (px) of each joint's
# bone at rest: torso up, head up, arms hanging, legs down.
REST = {"neck": (np.pi, 8.0), "head": (np.pi, 3.0), "l_elbow": (0.3, 5.0), "l_hand": (0.2, 5.0),
        "r_elbow": (-0.3, 5.0), "r_hand": (-0.2, 5.0), "l_knee": (0.15, 6.0), "l_foot": (0.0, 6.0),
        "r_knee": (-0.15, 6.0), "r_foot": (0.0, 6.0)}
# How far each bone swings (radians) around its rest angle.
SWING = {"neck": 0.25, "head": 0.3, "l_elbow": 1.4, "l_hand": 1.2, "r_elbow": 1.4, "r_hand": 1.2,
         "l_knee": 0.5, "l_foot": 0.5, "r_knee": 0.5, "r_foot": 0.5}


def _sinusoids(rng, steps, count, amplitude, low=0.004, high=0.03):
    """`count` smooth signals [count, steps], each a sum of three random sinusoids in [-amplitude, amplitude]."""
    t = np.arange(steps)[None, None, :]
    frequency = rng.uniform(low, high, (count, 3, 1))
    phase = rng.uniform(0, 2 * np.pi, (count, 3, 1))
    weight = rng.dirichlet(np.ones(3), count)[..., None]
    return amplitude * np.sum(weight * np.sin(2 * np.pi * frequency * t + phase), axis=1)


def joint_positions(rng, steps):
    """Joint (x, y) pixel positions of a dance: {joint: [steps, 2]}.

    Args:
        rng: A NumPy Generator.
        steps: Frames.
    """
    scale = rng.uniform(0.85, 1.1)
    sway = _sinusoids(rng, steps, 2, 1.0)
    hip = np.stack([WIDTH / 2 + 18 * sway[0], 17.5 + 1.5 * sway[1]], axis=-1)
    bones = [name for name in JOINTS if name != "hip"]
    swings = _sinusoids(rng, steps, len(bones), 1.0, high=0.05)
    parents = {child: parent for parent, child in LIMBS}
    positions = {"hip": hip.astype(np.float32)}
    for swing, name in zip(swings, bones):
        angle, length = REST[name]
        angle = angle + SWING[name] * swing
        offset = np.stack([np.sin(angle), np.cos(angle)], axis=-1) * length * scale
        positions[name] = positions[parents[name]] + offset.astype(np.float32)
    return positions


def _segment_distances(positions):
    """Distance from every pixel to every limb, and the position along it: [steps, limbs, H, W] twice."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32) + 0.5
    starts = np.stack([positions[a] for a, _ in LIMBS], axis=1)[:, :, None, None, :]  # [T, L, 1, 1, 2]
    ends = np.stack([positions[b] for _, b in LIMBS], axis=1)[:, :, None, None, :]
    dx, dy = (ends - starts)[..., 0], (ends - starts)[..., 1]
    px, py = xs - starts[..., 0], ys - starts[..., 1]  # [T, L, H, W]
    length_squared = np.maximum(dx * dx + dy * dy, 1e-6)
    along = np.clip((px * dx + py * dy) / length_squared, 0.0, 1.0)
    distance = np.hypot(px - along * dx, py - along * dy)
    return distance, along * np.sqrt(length_squared)


def _coverage(distance, thickness):
    """Anti-aliased coverage in [0, 1] of a stroke `thickness` px wide."""
    return np.clip(thickness / 2 + 0.5 - distance, 0.0, 1.0)[..., None]


def _composite(base, coverages, colors, shading=None):
    """Paints the limbs over `base` in order: [T, H, W, 3].

    Args:
        base: [1 or T, H, W, 3] background.
        coverages: [T, limbs, H, W, 1] stroke coverage.
        colors: [limbs, 3] colour per limb.
        shading: [T, limbs, H, W] brightness per pixel of each limb, or None for 1.
    """
    image = base
    for limb in range(coverages.shape[1]):
        alpha = coverages[:, limb]
        color = colors[limb] if shading is None else colors[limb] * shading[:, limb, ..., None]
        image = image * (1.0 - alpha) + color * alpha
    return image


def _background(rng, steps):
    """A textured background (two colours mixed by crossed waves and fine noise) [1, H, W, 3]."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    kx, ky = rng.uniform(0.1, 0.5, 2)
    waves = 0.5 + 0.25 * np.sin(kx * xs + rng.uniform(0, 6)) + 0.25 * np.sin(ky * ys + 0.3 * xs + rng.uniform(0, 6))
    grain = rng.uniform(0, 1, (HEIGHT, WIDTH))
    mix = np.clip(0.8 * waves + 0.2 * grain, 0, 1)[..., None]
    wall, pattern = rng.uniform(0.15, 0.7, (2, 3))
    floor = (ys > 25)[..., None] * rng.uniform(0.6, 0.9)
    image = (wall * (1 - mix) + pattern * mix) * (1 - 0.3 * floor)
    return image[None].astype(np.float32)


def render_video(seed, steps):
    """One dance: frames and pose labels, uint8 [steps, 32, 64, 3] each.

    Args:
        seed: Seed (an int or a sequence of ints for `numpy.random.default_rng`).
        steps: Frames.
    """
    rng = np.random.default_rng(seed)
    positions = joint_positions(rng, steps)
    distance, along = _segment_distances(positions)
    limbs = len(LIMBS)
    thickness = np.array([2.6, 2.2, 2.0, 1.8, 3.6, 4.4, 2.6, 2.2, 2.0, 1.8]) * rng.uniform(0.9, 1.2)
    colors = rng.uniform(0.25, 1.0, (limbs, 3)).astype(np.float32)
    colors[6:] = colors[[0, 1, 2, 3]]  # a figure's two sides share their clothes
    stripes = 0.8 + 0.2 * np.sign(np.sin(along * np.float32(rng.uniform(1.5, 2.5))))  # [T, L, H, W]
    coverage = _coverage(distance, thickness.astype(np.float32)[None, :, None, None])
    figure = _composite(_background(rng, steps), coverage, colors, stripes)
    light = _sinusoids(rng, steps, 4, 1.0, low=0.002, high=0.01)  # brightness and tint
    gain = ((1.0 + 0.15 * light[0])[:, None] * (1.0 + 0.06 * light[1:].T)).astype(np.float32)[:, None, None, :]
    frames = np.clip(figure * gain, 0.0, 1.0)
    labels = _composite(np.zeros((1, HEIGHT, WIDTH, 3), np.float32), _coverage(distance, 1.2), LABEL_COLORS)
    to_uint8 = lambda x: np.round(x * 255.0).astype(np.uint8)  # noqa: E731
    return to_uint8(frames), to_uint8(labels)
