"""A small robot-pushing world in pure NumPy, standing in for the BAIR robot pushing data.

One file of 800 lines because it is one simulator (world, physics, camera, renderer)
whose parts share its geometry; nothing outside imports its internals.

Every sequence shows a robot arm reaching into the view from the far edge of a table and
pushing 1 to 4 objects (discs, boxes, triangles) around with its gripper, seen by two
cameras, exactly in the layout of the BAIR records:

    image_aux1       uint8   [T, 64, 64, 3]  the first camera
    image_main       uint8   [T, 64, 64, 3]  the second camera (mirrored, shifted, re-shaded)
    action           float32 [T, 4]          (dx, dy, dz, gripper) in [-1, 1]
    endeffector_pos  float32 [T, 3]          (x, y, z) of the gripper

World and action semantics:

* The table is the square x, y in [-1, 1] (x to the right of the first camera, y towards the
  camera) and z is the height of the gripper above the table.
* `action[t]` is applied between frame t and frame t + 1:
      endeffector_pos[t + 1] = clip(endeffector_pos[t] + action[t, :3] * step_scale,
                                    workspace_low, workspace_high)
  and the gripper opening drawn in frame t + 1 is (action[t, 3] + 1) / 2 (0 closed, 1 open).
  The last action, `action[T - 1]`, is the one the controller would apply next; no frame
  shows its effect.
* The gripper pushes objects only while its height is below `contact_height`. Contacts push
  objects out of the gripper's disc and hand them the gripper's normal velocity; objects
  slide with a per-object Coulomb friction, spin from off-centre pushes, separate from each
  other and stay on the table.
* Not everything follows from the actions: the friction of every object is drawn per
  sequence, pushes are deflected by a random slip angle and friction varies randomly step to
  step, so a model of the video has real uncertainty to represent.
* Height is visible: the gripper is drawn larger and brighter the higher it is, shifted
  towards the far edge by the camera tilt, and it casts a drop shadow whose offset and blur
  grow with the height.

Everything is deterministic in (seed, index): sequence `index` of the dataset with seed
`seed` draws all of its randomness from `np.random.default_rng([seed, index])`.

Lower-level pieces, for tests and experiments: `sample_scene(rng, config)` draws the scene,
`plan_actions(scene, rng, config)` the scripted pushing actions (about 80% of the moves go
to an object, descend behind it and push through it; the rest wander), and
`simulate(actions, rng, config, scene=None)` runs and renders any actions, returning the
four keys above plus the objects' ground-truth "object_pos" [T, N, 2] and "object_angle"
[T, N]. `simulate_sequence` is exactly sample_scene -> plan_actions -> simulate on one rng.
With `SimConfig(stochastic=False)` the same scene and actions always give the same motion.

The renderer is vectorised over time: the physics runs first (a few scalar operations per
object and step), then all frames are drawn at once, objects and the gripper in small
patches gathered and scattered with fancy indexing, the arm as a per-row band. The second
camera is a shifted, mirrored window of the same (slightly wider) canvas with its own
shading, so it costs a few array operations rather than a second render.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

SHAPES = ("disc", "box", "triangle")


@dataclass(frozen=True)
class SimConfig:
    """Every knob of the pushing world.

    Args:
        image_size: Height and width of the frames in pixels.
        sequence_length: Frames per sequence.
        step_scale: World units moved per unit of action per step (x, y and z).
        workspace_low: Lowest (x, y, z) the end effector can reach.
        workspace_high: Highest (x, y, z) the end effector can reach.
        contact_height: The gripper touches objects while its z is below this.
        gripper_radius: Radius of the gripper's contact disc (world units).
        min_objects: Fewest objects on the table.
        max_objects: Most objects on the table.
        object_radius_range: Range of the objects' sizes (circumradius, world units).
        object_height_range: Range of the objects' heights (sets their shadows and sides).
        shape_probs: Probabilities of disc, box and triangle.
        friction_range: Range of the per-object Coulomb deceleration (units / step^2).
        friction_jitter: Relative step-to-step random variation of the friction.
        slip_std: Standard deviation (radians) of the random deflection of every push.
        spin_std: Standard deviation of the random spin added by a push (rad / step).
        stochastic: If False, no slips and no friction jitter (friction stays random).
        substeps: Physics substeps per frame.
        target_probability: Chance that the controller's next move pushes an object.
        action_noise_std: Standard deviation of the smoothed noise added to the actions.
        action_noise_smoothing: AR(1) coefficient of that noise (0 = white).
        tilt: How far (world units per unit of height) a raised point is drawn towards the
            far edge of the table.
        zoom: Relative growth of the gripper's drawn size per unit of height.
        shadow_length: Shadow offset per unit of height (world units).
        arm_height: Height of the arm's wrist above the fingertips (world units).
        arm_base: (x, y, z) of the arm's shoulder, beyond the far edge of the table.
        arm_width: Radius of the arm's forearm in world units.
        second_camera_shift: Columns between the windows of the two cameras.
        pixel_noise: Standard deviation of the static per-sequence table grain (0-255 scale).
    """

    image_size: int = 64
    sequence_length: int = 30
    step_scale: float = 0.12
    workspace_low: tuple = (-0.9, -0.9, 0.0)
    workspace_high: tuple = (0.9, 0.9, 1.0)
    contact_height: float = 0.3
    gripper_radius: float = 0.1
    min_objects: int = 1
    max_objects: int = 4
    object_radius_range: tuple = (0.13, 0.22)
    object_height_range: tuple = (0.08, 0.2)
    shape_probs: tuple = (0.4, 0.4, 0.2)
    friction_range: tuple = (0.008, 0.05)
    friction_jitter: float = 0.5
    slip_std: float = 0.3
    spin_std: float = 0.03
    stochastic: bool = True
    substeps: int = 2
    target_probability: float = 0.8
    action_noise_std: float = 0.2
    action_noise_smoothing: float = 0.7
    tilt: float = 0.3
    zoom: float = 0.45
    shadow_length: float = 0.45
    arm_height: float = 0.4
    arm_base: tuple = (0.15, -1.9, 1.3)
    arm_width: float = 0.17
    second_camera_shift: int = 6
    pixel_noise: float = 3.0

    def __post_init__(self):
        if self.image_size < 16:
            raise ValueError(f"image_size must be at least 16, got {self.image_size}")
        if self.sequence_length < 2:
            raise ValueError(f"sequence_length must be at least 2, got {self.sequence_length}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError("need 1 <= min_objects <= max_objects")
        if self.substeps < 1:
            raise ValueError("substeps must be at least 1")


@dataclass
class Scene:
    """The static part of a sequence: objects' initial state and looks, table, light.

    All arrays are indexed by object. Positions are world units.
    """

    ee0: np.ndarray  # [3] initial end-effector position
    grip0: float  # initial gripper opening in [0, 1]
    shape: np.ndarray  # [N] int index into SHAPES
    radius: np.ndarray  # [N] circumradius
    aspect: np.ndarray  # [N] box half-height / half-width
    height: np.ndarray  # [N]
    color: np.ndarray  # [N, 3] 0-255
    friction: np.ndarray  # [N]
    pos0: np.ndarray  # [N, 2]
    angle0: np.ndarray  # [N]
    light: np.ndarray  # [2] unit vector in the table plane pointing towards the light
    table_seed: int  # seeds the table texture

    @property
    def num_objects(self) -> int:
        return len(self.radius)


def _collision_radius(scene: Scene) -> np.ndarray:
    """Disc used for contacts: a bit inside the drawn outline of boxes and triangles."""
    factor = np.array([1.0, 0.85, 0.7])[scene.shape]
    return scene.radius * factor


def sample_scene(rng: np.random.Generator, config: SimConfig = SimConfig()) -> Scene:
    """Draws the objects, the light, the table and the arm's start.

    Args:
        rng: Source of all randomness.
        config: The world's knobs.
    """
    n = int(rng.integers(config.min_objects, config.max_objects + 1))
    probs = np.asarray(config.shape_probs, dtype=np.float64)
    shape = rng.choice(len(SHAPES), size=n, p=probs / probs.sum())
    radius = rng.uniform(*config.object_radius_range, size=n)
    aspect = rng.uniform(0.55, 1.0, size=n)
    height = rng.uniform(*config.object_height_range, size=n)
    hue = rng.uniform(0, 1, size=n)
    sat = rng.uniform(0.45, 0.95, size=n)
    val = rng.uniform(0.45, 1.0, size=n)
    color = _hsv_to_rgb(hue, sat, val) * 255.0
    friction = rng.uniform(*config.friction_range, size=n)
    angle0 = rng.uniform(0, 2 * np.pi, size=n)
    scene_shape = np.asarray(shape)
    coll = radius * np.array([1.0, 0.85, 0.7])[scene_shape]
    pos = np.zeros((n, 2))
    for i in range(n):
        for _ in range(50):
            p = rng.uniform(-0.7, 0.7, size=2)
            if i == 0 or np.all(np.hypot(*(pos[:i] - p).T) > coll[:i] + coll[i] + 0.05):
                break
        pos[i] = p
    low = np.asarray(config.workspace_low)
    high = np.asarray(config.workspace_high)
    ee0 = rng.uniform(low, high)
    ee0[2] = rng.uniform(0.45 * high[2] + 0.55 * low[2], high[2])
    a = rng.uniform(0, 2 * np.pi)
    light = np.array([math.cos(a), math.sin(a)])
    return Scene(
        ee0=ee0,
        grip0=float(rng.uniform()),
        shape=scene_shape,
        radius=radius,
        aspect=aspect,
        height=height,
        color=color,
        friction=friction,
        pos0=pos,
        angle0=angle0,
        light=light,
        table_seed=int(rng.integers(2**31)),
    )


def _hsv_to_rgb(h, s, v):
    h = np.asarray(h) * 6.0
    i = np.floor(h).astype(int) % 6
    f = h - np.floor(h)
    p = v * (1 - s)
    q = v * (1 - s * f)
    t = v * (1 - s * (1 - f))
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1)


# ----------------------------------------------------------------------------- control


def integrate_actions(ee0, actions, config: SimConfig = SimConfig()) -> np.ndarray:
    """End-effector positions [T, 3] (float32) from the start and the actions [T, 4].

    endeffector_pos[t + 1] = clip(endeffector_pos[t] + action[t, :3] * step_scale, low, high).
    """
    actions = np.asarray(actions, dtype=np.float32)
    low = np.asarray(config.workspace_low, dtype=np.float32)
    high = np.asarray(config.workspace_high, dtype=np.float32)
    step = np.float32(config.step_scale)
    pos = np.empty((len(actions), 3), dtype=np.float32)
    pos[0] = np.clip(np.asarray(ee0, dtype=np.float32), low, high)
    for t in range(len(actions) - 1):
        pos[t + 1] = np.clip(pos[t] + actions[t, :3] * step, low, high)
    return pos


def plan_actions(
    scene: Scene, rng: np.random.Generator, config: SimConfig = SimConfig()
) -> np.ndarray:
    """Smooth random pushing actions [T, 4] (float32) for a scene.

    Most moves (`target_probability`) pick an object, fly above a point behind it, descend
    and push through it, then lift; the others wander to a random point. Smoothed AR(1)
    noise is added throughout. The plan looks at the objects' initial positions only.

    Args:
        scene: The scene to act in.
        rng: Source of randomness.
        config: The world's knobs.
    """
    T = config.sequence_length
    low = np.asarray(config.workspace_low)
    high = np.asarray(config.workspace_high)
    coll = _collision_radius(scene)

    def moves():
        while True:
            if rng.uniform() < config.target_probability:
                k = int(rng.integers(scene.num_objects))
                o = scene.pos0[k]
                # Push mostly towards the table's centre, so objects stay in view.
                if rng.uniform() < 0.7:
                    phi = math.atan2(-o[1], -o[0]) + rng.normal(0, 0.9)
                else:
                    phi = rng.uniform(0, 2 * np.pi)
                d = np.array([math.cos(phi), math.sin(phi)])
                back = o - d * (coll[k] + config.gripper_radius + rng.uniform(0.05, 0.15))
                z_low = rng.uniform(low[2], min(0.6 * config.contact_height, high[2]))
                z_high = rng.uniform(config.contact_height + 0.1, high[2])
                through = o + d * rng.uniform(0.25, 0.6)
                grip = rng.uniform(-1, 1)
                speed = rng.uniform(0.5, 1.0)
                yield [back[0], back[1], z_high], 1.0, grip
                yield [back[0], back[1], z_low], 1.0, grip
                yield [through[0], through[1], z_low], speed, rng.uniform(-1, 1)
                yield [through[0], through[1], z_high], 1.0, rng.uniform(-1, 1)
            else:
                yield rng.uniform(low, high).tolist(), rng.uniform(0.4, 1.0), rng.uniform(-1, 1)

    plan = moves()
    target, speed, grip = next(plan)
    actions = np.zeros((T, 4), dtype=np.float32)
    lo = low.tolist()
    hi = high.tolist()
    pos = np.clip(scene.ee0, low, high).tolist()
    step = config.step_scale
    rho = config.action_noise_smoothing
    innovation = config.action_noise_std * math.sqrt(max(1.0 - rho * rho, 0.0))
    # Smoothed AR(1) noise, drawn in one go (plain floats are much faster than tiny arrays).
    shocks = rng.normal(0.0, 1.0, size=(T, 4))
    shocks[0] *= config.action_noise_std
    shocks[1:] *= innovation
    shocks = shocks.tolist()
    noise = [0.0] * 4
    for t in range(T):
        noise = [rho * noise[k] + shocks[t][k] for k in range(4)] if t else shocks[0]
        for _ in range(8):
            delta = [(target[k] - pos[k]) / step for k in range(3)]
            norm = max(abs(delta[0]), abs(delta[1]), abs(delta[2]))
            if norm > 0.5:
                break
            target, speed, grip = next(plan)
        f = speed / norm if norm > speed else 1.0
        a = [min(max(delta[k] * f + noise[k] * speed, -1.0), 1.0) for k in range(3)]
        actions[t, :3] = a
        actions[t, 3] = min(max(grip + 0.3 * noise[3], -1.0), 1.0)
        a32 = actions[t, :3].tolist()
        pos = [min(max(pos[k] + a32[k] * step, lo[k]), hi[k]) for k in range(3)]
    return actions


# ----------------------------------------------------------------------------- physics


def simulate_physics(
    scene: Scene, ee: np.ndarray, rng: np.random.Generator, config: SimConfig = SimConfig()
):
    """Moves the objects given the end-effector path.

    Args:
        scene: The scene (objects' initial state and friction).
        ee: [T, 3] end-effector positions.
        rng: Source of the slips and friction jitter (the stochastic part).
        config: The world's knobs.

    Returns:
        (positions [T, N, 2], angles [T, N]) as float64 arrays.
    """
    T = len(ee)
    n = scene.num_objects
    sub = config.substeps
    dt = 1.0 / sub
    coll = _collision_radius(scene).tolist()
    mass = (scene.radius**2).tolist()
    mu = scene.friction.tolist()
    R = config.gripper_radius
    lim = 1.0
    if config.stochastic:
        slips = rng.normal(0.0, config.slip_std, size=(T, sub, n)).tolist()
        spins = rng.normal(0.0, config.spin_std, size=(T, sub, n)).tolist()
        jitter = np.exp(rng.normal(0.0, config.friction_jitter, size=(T, n))).tolist()
    else:
        slips = spins = [[[0.0] * n] * sub] * T
        jitter = [[1.0] * n] * T
    px = scene.pos0[:, 0].tolist()
    py = scene.pos0[:, 1].tolist()
    ang = scene.angle0.tolist()
    vx = [0.0] * n
    vy = [0.0] * n
    w = [0.0] * n
    out_p = np.empty((T, n, 2))
    out_a = np.empty((T, n))
    out_p[0, :, 0] = px
    out_p[0, :, 1] = py
    out_a[0] = ang
    eel = ee.astype(np.float64).tolist()
    ch = config.contact_height
    for t in range(T - 1):
        g0x, g0y, g0z = eel[t]
        g1x, g1y, g1z = eel[t + 1]
        gvx = g1x - g0x
        gvy = g1y - g0y
        for s in range(sub):
            f = (s + 1) * dt
            gx = g0x + gvx * f
            gy = g0y + gvy * f
            gz = g0z + (g1z - g0z) * f
            # Sliding with Coulomb friction.
            for i in range(n):
                sp = math.hypot(vx[i], vy[i])
                if sp > 0.0:
                    dec = mu[i] * jitter[t][i] * dt
                    k = (sp - dec) / sp if sp > dec else 0.0
                    vx[i] *= k
                    vy[i] *= k
                    px[i] += vx[i] * dt
                    py[i] += vy[i] * dt
                if w[i] != 0.0:
                    ang[i] += w[i] * dt
                    w[i] *= 0.8 ** dt if sp > 0.0 else 0.5 ** dt
            # Gripper contacts.
            if gz < ch:
                for i in range(n):
                    dx = px[i] - gx
                    dy = py[i] - gy
                    d = math.hypot(dx, dy)
                    overlap = R + coll[i] - d
                    if overlap > 0.0:
                        if d < 1e-9:
                            dx, dy, d = gvx + 1e-6, gvy, math.hypot(gvx + 1e-6, gvy)
                        nx = dx / d
                        ny = dy / d
                        px[i] += nx * overlap
                        py[i] += ny * overlap
                        vn = gvx * nx + gvy * ny
                        dv = vn - (vx[i] * nx + vy[i] * ny)
                        if dv > 0.0:
                            a = slips[t][s][i]
                            c = math.cos(a)
                            sn = math.sin(a)
                            vx[i] += dv * (nx * c - ny * sn)
                            vy[i] += dv * (nx * sn + ny * c)
                            vt = -gvx * ny + gvy * nx
                            w[i] += -0.6 * vt / coll[i] + spins[t][s][i]
            # Object-object separation with an inelastic exchange of normal velocity.
            for i in range(n):
                for j in range(i + 1, n):
                    dx = px[j] - px[i]
                    dy = py[j] - py[i]
                    d = math.hypot(dx, dy)
                    overlap = coll[i] + coll[j] - d
                    if overlap > 0.0:
                        if d < 1e-9:
                            dx, dy, d = 1.0, 0.0, 1.0
                        nx = dx / d
                        ny = dy / d
                        mi = mass[j] / (mass[i] + mass[j])
                        mj = 1.0 - mi
                        px[i] -= nx * overlap * mi
                        py[i] -= ny * overlap * mi
                        px[j] += nx * overlap * mj
                        py[j] += ny * overlap * mj
                        rel = (vx[j] - vx[i]) * nx + (vy[j] - vy[i]) * ny
                        if rel < 0.0:
                            vx[i] += rel * nx * mi
                            vy[i] += rel * ny * mi
                            vx[j] -= rel * nx * mj
                            vy[j] -= rel * ny * mj
            # The table's edges.
            for i in range(n):
                r = coll[i]
                if px[i] < -lim + r:
                    px[i] = -lim + r
                    vx[i] = -0.3 * vx[i] if vx[i] < 0 else vx[i]
                elif px[i] > lim - r:
                    px[i] = lim - r
                    vx[i] = -0.3 * vx[i] if vx[i] > 0 else vx[i]
                if py[i] < -lim + r:
                    py[i] = -lim + r
                    vy[i] = -0.3 * vy[i] if vy[i] < 0 else vy[i]
                elif py[i] > lim - r:
                    py[i] = lim - r
                    vy[i] = -0.3 * vy[i] if vy[i] > 0 else vy[i]
        out_p[t + 1, :, 0] = px
        out_p[t + 1, :, 1] = py
        out_a[t + 1] = ang
    return out_p, out_a


# ----------------------------------------------------------------------------- rendering

_TABLE_PALETTE = np.array(
    [
        [150, 110, 70],  # wood
        [120, 85, 55],  # dark wood
        [180, 170, 150],  # beige
        [130, 130, 135],  # grey
        [95, 110, 125],  # blue-grey
        [165, 140, 110],  # light wood
    ],
    dtype=np.float64,
)


def _table(scene: Scene, config: SimConfig, H: int, W: int) -> np.ndarray:
    """The static table layer [3, H, W] (float32, 0-255): colour, pattern, light ramp."""
    rng = np.random.default_rng(scene.table_seed)
    scale = H / 2.0
    y = (np.arange(H) + 0.5) / scale - 1.0
    x = (np.arange(W) + 0.5) / scale - 1.0
    base = _TABLE_PALETTE[rng.integers(len(_TABLE_PALETTE))] * rng.uniform(0.8, 1.15, size=3)

    def lowfreq(cells):
        # Bilinear upsampling of a coarse random grid, as two small matrix products.
        g = rng.normal(size=(cells + 1, cells + 1))
        cy = np.clip((y + 1.0) / 2.0 * cells, 0, cells - 1e-9)
        cx = np.clip((x + 1.0) / 2.0 * cells, 0, cells)
        iy = np.floor(cy).astype(int)
        ix = np.minimum(np.floor(cx).astype(int), cells - 1)
        wy = np.zeros((H, cells + 1))
        wy[np.arange(H), iy] = 1 - (cy - iy)
        wy[np.arange(H), iy + 1] = cy - iy
        wx = np.zeros((cells + 1, W))
        fx = np.clip(cx - ix, 0, 1)
        wx[ix, np.arange(W)] = 1 - fx
        wx[ix + 1, np.arange(W)] = fx
        return wy @ g @ wx

    shade = 1.0 + rng.uniform(0.03, 0.08) * lowfreq(int(rng.integers(3, 6)))
    kind = rng.integers(3)
    if kind == 0:  # wood grain: warped stripes
        th = rng.uniform(0, np.pi)
        u = x[None, :] * math.cos(th) + y[:, None] * math.sin(th)
        warp = lowfreq(4)
        freq = rng.uniform(6, 14)
        stripes = np.sin(freq * np.pi * u + 1.5 * warp)
        shade = shade + rng.uniform(0.04, 0.1) * stripes
    elif kind == 1:  # tiles / checker
        period = rng.uniform(0.35, 0.7)
        chk = (np.floor(x[None, :] / period) + np.floor(y[:, None] / period)) % 2
        shade = shade + rng.uniform(0.03, 0.07) * (chk - 0.5)
    # Light ramp towards the light.
    lx, ly = scene.light
    shade = shade * (1.0 + 0.12 * (x[None, :] * lx + y[:, None] * ly))
    table = base[None, None, :] * shade[:, :, None]
    table = table + rng.normal(0, config.pixel_noise, size=(H, W, 1))
    return np.ascontiguousarray(np.clip(table, 0.0, 255.0).transpose(2, 0, 1), dtype=np.float32)


def _patch_grid(cx, cy, P, T, H, W):
    """A P x P patch per frame around (cx[t], cy[t]), moved inside the canvas if needed.

    Returns (index, dx, dy): `index` [3 * T * P * P] addresses the patch's pixels in the
    flattened channel-planar canvas [3, T, H, W] (for `take` and fancy assignment), and
    dx [T, 1, P], dy [T, P, 1] are the pixel centres' offsets from (cx, cy).
    """
    oy = np.clip(np.round(cy - P / 2.0).astype(np.int64), 0, H - P)
    ox = np.clip(np.round(cx - P / 2.0).astype(np.int64), 0, W - P)
    ar = np.arange(P)
    iy = oy[:, None, None] + ar[None, :, None]
    ix = ox[:, None, None] + ar[None, None, :]
    lin = (np.arange(T)[:, None, None] * (H * W) + iy * W + ix).ravel()
    index = (np.arange(3)[:, None] * (T * H * W) + lin[None, :]).ravel()
    dy = (iy + 0.5 - cy[:, None, None]).astype(np.float32)
    dx = (ix + 0.5 - cx[:, None, None]).astype(np.float32)
    return index, dx, dy


def _shape_sdf(kind, r, aspect, angle, dx, dy):
    """Signed distance (pixels) to a disc, box or triangle of circumradius r, per frame."""
    if kind == 0:
        return np.sqrt(dx * dx + dy * dy) - r
    if kind == 1:
        hx = r / math.sqrt(1.0 + aspect * aspect)
        hy = hx * aspect
        c = np.cos(angle).astype(np.float32)[:, None, None]
        s = np.sin(angle).astype(np.float32)[:, None, None]
        u = np.abs(dx * c + dy * s) - hx
        v = np.abs(dy * c - dx * s) - hy
        return np.maximum(u, v)
    out = None
    for k in range(3):
        a = angle + k * (2 * np.pi / 3)
        c = np.cos(a).astype(np.float32)[:, None, None]
        s = np.sin(a).astype(np.float32)[:, None, None]
        d = dx * c + dy * s
        out = d if out is None else np.maximum(out, d)
    return out - 0.5 * r


def _shift_down(a, k):
    """a shifted by k >= 0 rows towards larger row indices inside every patch (zero fill)."""
    if k <= 0:
        return a
    out = np.zeros_like(a)
    out[:, k:] = a[:, :-k]
    return out


def render(
    scene: Scene,
    ee: np.ndarray,
    grip: np.ndarray,
    obj_pos: np.ndarray,
    obj_angle: np.ndarray,
    config: SimConfig = SimConfig(),
):
    """Draws both cameras.

    Args:
        scene: Looks of the objects, table and light.
        ee: [T, 3] end-effector positions.
        grip: [T] gripper opening in [0, 1].
        obj_pos: [T, N, 2] object positions.
        obj_angle: [T, N] object angles.
        config: The world's knobs.

    Returns:
        (image_aux1, image_main), uint8 [T, S, S, 3] each.
    """
    S = config.image_size
    T = len(ee)
    shift = config.second_camera_shift
    H, W = S, S + shift
    scale = S / 2.0
    lx, ly = float(scene.light[0]), float(scene.light[1])
    tilt = config.tilt
    sl = config.shadow_length

    def to_px(x, y, z):
        return (x + 1.0) * scale, (y - tilt * z + 1.0) * scale

    # Channel-planar canvas [3, T, H, W]: masks [T, ...] broadcast over the leading axis,
    # which is much faster in NumPy than broadcasting over a trailing axis of 3. Every
    # layer below is a convex blend or a darkening of values in [0, 255], so the canvas
    # never leaves that range and needs no clipping.
    canvas = np.empty((3, T, H, W), dtype=np.float32)
    canvas[:] = _table(scene, config, H, W)[:, None]
    flat = canvas.reshape(-1)

    # Objects: one patch per object covering its shadow, its side and its top. Drawing the
    # shadow and the body in the same pass lets a shadow fall on a neighbour drawn earlier.
    for i in range(scene.num_objects):
        r = scene.radius[i] * scale
        h = scene.height[i]
        cx, cy = to_px(obj_pos[:, i, 0], obj_pos[:, i, 1], h)
        side = int(round(tilt * h * scale))
        sdx = -lx * sl * h * scale
        sdy = -ly * sl * h * scale
        P = int(min(2 * math.ceil(r + max(abs(sdx), abs(sdy) + side) + 2), H))
        index, dx, dy = _patch_grid(cx, cy, P, T, H, W)
        sdf = _shape_sdf(int(scene.shape[i]), r, scene.aspect[i], obj_angle[:, i], dx, dy)
        top = np.clip(0.5 - sdf, 0.0, 1.0)
        body = np.maximum(top, _shift_down(top, side))
        # Soft shadow: the body moved by the (integer) shadow offset, blurred once.
        shadow = np.roll(body, (int(round(sdy)), int(round(sdx))), axis=(1, 2))
        shadow = 0.25 * (np.roll(shadow, 1, axis=2) + np.roll(shadow, -1, axis=2)) + 0.5 * shadow
        # Lit top: brighter towards the light, with a darker rim.
        lit = (1.0 + 0.35 * (dx * lx + dy * ly) / r) * (0.7 + 0.3 * np.clip(-sdf / 1.5, 0.0, 1.0))
        col = scene.color[i].astype(np.float32)[:, None, None, None]
        region = flat.take(index).reshape(3, T, P, P)
        region *= 1.0 - 0.45 * shadow
        region += body * (col * 0.55 - region)
        region += top * (np.minimum(lit * col, 255.0) - region)
        flat[index] = region.ravel()

    # Gripper and arm geometry (pixels).
    gx, gy = to_px(ee[:, 0], ee[:, 1], ee[:, 2])
    wx, wy = to_px(ee[:, 0], ee[:, 1], ee[:, 2] + config.arm_height)
    bx, by = to_px(*config.arm_base)
    gscale = 1.0 + config.zoom * ee[:, 2]
    # The gripper's drop shadow: a disc that gets softer and fainter with height.
    shx = gx - lx * sl * ee[:, 2] * scale
    shy = (ee[:, 1] + 1.0) * scale - ly * sl * ee[:, 2] * scale
    Pg = int(min(2 * math.ceil(0.2 * scale * (1 + config.zoom) + 4), H))
    index, dx, dy = _patch_grid(shx, shy, Pg, T, H, W)
    soft = (1.0 + 2.5 * ee[:, 2]).astype(np.float32)[:, None, None]
    rad = np.float32(0.13 * scale)
    shadow = np.clip((rad - np.sqrt(dx * dx + dy * dy)) / soft + 0.5, 0.0, 1.0)
    strength = (0.55 - 0.25 * ee[:, 2]).astype(np.float32)[:, None, None]
    region = flat.take(index).reshape(3, T, Pg, Pg)
    region *= 1.0 - strength * shadow
    flat[index] = region.ravel()

    rows = (np.arange(H, dtype=np.float32) + 0.5)[None, :]
    cols = (np.arange(W, dtype=np.float32) + 0.5)[None, None, :]

    def band(ax, ay, ex, ey, half, nrows):
        """Per-row centre and half-width of a thick segment from (ax, ay) down to (ex, ey)."""
        rr = rows[:, :nrows]
        ddx = (ex - ax)[:, None]
        ddy = (ey - ay)[:, None]
        centre = ax[:, None] + (rr - ay[:, None]) / ddy * ddx
        hw = half[:, None] * np.sqrt(1.0 + (ddx / ddy) ** 2)
        # Rounded end below the wrist.
        past = rr - ey[:, None]
        circle = np.sqrt(np.maximum(half[:, None] ** 2 - past**2, 0.0))
        cap = np.where(past < half[:, None], circle, -1.0)
        hw = np.where(past > 0, cap, hw)
        centre = np.where(past > 0, ex[:, None], centre)
        return centre.astype(np.float32)[:, :, None], hw.astype(np.float32)[:, :, None]

    def last_row(y, half):
        return int(min(H, max(1, math.ceil(float(np.max(y + half)) + 1))))

    arm_half = config.arm_width * scale * (0.8 + 0.2 * gscale)
    # The arm's shadow on the table (only the rows it can reach are touched).
    base_sx = np.full(T, bx - lx * sl * config.arm_base[2] * scale)
    base_sy = np.full(T, (config.arm_base[1] + 1.0) * scale - ly * sl * config.arm_base[2] * scale)
    wsx = gx - lx * sl * (ee[:, 2] + config.arm_height) * scale
    wsy = (ee[:, 1] + 1.0) * scale - ly * sl * (ee[:, 2] + config.arm_height) * scale
    n_rows = last_row(wsy, arm_half)
    c_s, hw_s = band(base_sx, base_sy, wsx, wsy, 0.8 * arm_half, n_rows)
    arm_shadow = np.abs(cols - c_s)
    np.subtract(hw_s, arm_shadow, out=arm_shadow)
    np.clip(arm_shadow, 0.0, 1.0, out=arm_shadow)
    canvas[:, :, :n_rows] *= 1.0 - 0.35 * arm_shadow

    # The arm: a shaded cylinder from the shoulder (off view) down to the wrist.
    n_rows = last_row(wy, arm_half)
    c_a, hw_a = band(np.full(T, bx), np.full(T, by), wx, wy, arm_half, n_rows)
    u = cols - c_a  # signed distance from the axis
    cover = hw_a + 0.5 - np.abs(u)
    np.clip(cover, 0.0, 1.0, out=cover)
    u /= np.maximum(hw_a, 1e-3)
    # Cylinder shading 0.9 - 0.35 u^2 + 0.25 lx u: lit on the light's side.
    cyl = (np.float32(-0.35) * u + np.float32(0.25 * lx)) * u + np.float32(0.9)
    part = canvas[:, :, :n_rows]
    for c, value in enumerate((70.0, 72.0, 80.0)):
        part[c] += cover * (cyl * np.float32(value) - part[c])

    # The gripper: a dark palm across the wrist and two light fingers below it, whose gap
    # shows the opening; everything scales with the height.
    index, dx, dy = _patch_grid(gx, gy - 0.05 * scale, Pg, T, H, W)
    dy = dy - np.float32(0.05 * scale)  # offsets from the fingertips again
    sc = gscale.astype(np.float32)[:, None, None] * np.float32(scale)
    palm = np.maximum(np.abs(dx) - 0.16 * sc, np.abs(dy + 0.1 * sc) - 0.03 * sc)
    wrist = np.clip(0.5 - palm, 0.0, 1.0)
    opening = (0.035 + 0.075 * np.asarray(grip, dtype=np.float32))[:, None, None] * sc
    fy = np.abs(dy + 0.045 * sc) - 0.045 * sc
    f1 = np.maximum(np.abs(dx - opening) - 0.024 * sc, fy)
    f2 = np.maximum(np.abs(dx + opening) - 0.024 * sc, fy)
    fingers = np.clip(0.5 - np.minimum(f1, f2), 0.0, 1.0)
    bright = np.minimum(0.75 + 0.4 * ee[:, 2], 1.3).astype(np.float32)[None, :, None, None]
    region = flat.take(index).reshape(3, T, Pg, Pg)
    wrist_rgb = np.array([120, 120, 128], dtype=np.float32)[:, None, None, None] * bright
    finger_rgb = np.array([185, 185, 190], dtype=np.float32)[:, None, None, None] * bright
    region += wrist * (wrist_rgb - region)
    region += fingers * (finger_rgb - region)
    flat[index] = region.ravel()

    # Both cameras, HWC uint8 (float -> uint8 truncates; values are already in [0, 255]).
    aux = np.empty((T, S, S, 3), dtype=np.uint8)
    main = np.empty((T, S, S, 3), dtype=np.uint8)
    gain = _second_camera_gain(S)
    for c in range(3):
        aux[..., c] = canvas[c, :, :, :S]
        main[..., c] = canvas[c, :, :, shift : shift + S][:, :, ::-1] * gain[c]
    return aux, main


_GAIN_CACHE: dict = {}


def _second_camera_gain(S: int) -> np.ndarray:
    """Fixed shading of the second camera: a warmer tint, a vignette and a light ramp."""
    if S not in _GAIN_CACHE:
        c = (np.arange(S) + 0.5) / S * 2.0 - 1.0
        r2 = c[None, :] ** 2 + c[:, None] ** 2
        gain = (1.0 - 0.18 * r2) * (1.0 + 0.1 * c[:, None])
        tint = np.array([1.0, 0.95, 0.84])
        gain = tint[:, None, None] * gain[None] / gain.max()  # <= 1: no clipping needed
        _GAIN_CACHE[S] = gain.astype(np.float32)
    return _GAIN_CACHE[S]


# ----------------------------------------------------------------------------- public API


def simulate(
    actions, rng: np.random.Generator, config: SimConfig = SimConfig(), scene: Optional[Scene] = None
) -> dict:
    """Runs and renders a sequence driven by given actions.

    Args:
        actions: [T, 4] actions in [-1, 1] (see the module docstring for their meaning).
        rng: Source of the stochastic part of the physics (and of the scene if not given).
        config: The world's knobs; T must equal config.sequence_length.
        scene: The scene; drawn from `rng` when None.

    Returns:
        The four BAIR keys plus "object_pos" float32 [T, N, 2] and "object_angle" [T, N].
    """
    actions = np.asarray(actions, dtype=np.float32)
    if actions.shape != (config.sequence_length, 4):
        raise ValueError(f"actions must be [{config.sequence_length}, 4], got {actions.shape}")
    if scene is None:
        scene = sample_scene(rng, config)
    ee = integrate_actions(scene.ee0, actions, config)
    grip = np.empty(len(actions), dtype=np.float32)
    grip[0] = scene.grip0
    grip[1:] = (np.clip(actions[:-1, 3], -1.0, 1.0) + 1.0) / 2.0
    obj_pos, obj_angle = simulate_physics(scene, ee, rng, config)
    aux, main = render(scene, ee, grip, obj_pos, obj_angle, config)
    return {
        "image_aux1": aux,
        "image_main": main,
        "action": actions,
        "endeffector_pos": ee,
        "object_pos": obj_pos.astype(np.float32),
        "object_angle": obj_angle.astype(np.float32),
    }


def simulate_sequence(seed: int, index: int, config: SimConfig = SimConfig()) -> dict:
    """Sequence `index` of the dataset with seed `seed`.

    Deterministic: all randomness comes from `np.random.default_rng([seed, index])`.

    Returns:
        {"image_aux1": uint8 [T, S, S, 3], "image_main": uint8 [T, S, S, 3],
         "action": float32 [T, 4], "endeffector_pos": float32 [T, 3]}
    """
    rng = np.random.default_rng([seed, index])
    scene = sample_scene(rng, config)
    actions = plan_actions(scene, rng, config)
    out = simulate(actions, rng, config, scene=scene)
    return {k: out[k] for k in ("image_aux1", "image_main", "action", "endeffector_pos")}
