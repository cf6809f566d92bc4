"""Warns, before a run starts, that a GPU-sized SVG run was given only a CPU.

The estimate is the VGG encoder and decoder convolutions' arithmetic (they dominate an
SVG step at the GPU-sized widths) over a rough sustained CPU rate per core. It is coarse:
a few-fold either way depending on the CPU and its load, which is enough to tell minutes
from days.
"""

import os
from typing import Optional

from keras_cvae.config import TrainConfig
from keras_cvae.layers.blocks import scaled_channels
from keras_cvae.tasks.svg.config import SVGConfig

# Effective float32 FLOP/s of one core on these convolutions (TensorFlow graph mode,
# oneDNN, teacher-forced and free-running steps alike): a fast core with wide vector units;
# an older one is several times slower, which the warning's "roughly" covers.
FLOPS_PER_CORE = 1.5e11
# A run the estimate puts above this is GPU-sized: on a CPU it would take more than a night.
GPU_SIZED_HOURS = 8.0
CPU_PRESET = "small"  # the README's CPU-sized preset


def conv_multiply_adds(model: SVGConfig) -> int:
    """Multiply-adds of the VGG encoder and decoder convolutions for one frame.

    Args:
        model: The SVG model's sizes (image_size 64, as the VGG64 nets need).
    """
    c = [scaled_channels(base, model.width) for base in (64, 128, 256, 512)]
    side = model.image_size
    pixels = [(side >> level) ** 2 for level in range(4)]  # 64, 32, 16, 8 pixels square

    def convs(level, channels):  # 3x3 convs at one resolution, channel counts in order
        return sum(9 * a * b * pixels[level] for a, b in zip(channels, channels[1:]))

    encoder = (convs(0, [model.channels, c[0], c[0]]) + convs(1, [c[0], c[1], c[1]])
               + convs(2, [c[1], c[2], c[2], c[2]]) + convs(3, [c[2], c[3], c[3], c[3]])
               + 16 * c[3] * model.g_dim)
    # Each decoder stage's first conv also reads the encoder skip of its resolution.
    decoder = (16 * model.g_dim * c[3]
               + convs(3, [2 * c[3], c[3], c[3], c[2]]) + convs(2, [2 * c[2], c[2], c[2], c[1]])
               + convs(1, [2 * c[1], c[1], c[0]]) + convs(0, [2 * c[0], c[0], model.channels]))
    return encoder + decoder


def estimated_step_seconds(model: SVGConfig, batch_size: int, cores: int) -> float:
    """Rough seconds of one training step on `cores` CPU cores.

    Args:
        model: The SVG model's sizes.
        batch_size: Sequences per step.
        cores: CPU cores the step runs on.
    """
    frames = batch_size * (model.n_past + model.n_future)
    # Two FLOPs a multiply-add; the backward pass costs about twice the forward one.
    flops = 2 * 3 * conv_multiply_adds(model) * frames
    return flops / (FLOPS_PER_CORE * max(1, cores))


def cpu_warning(preset: str, model: SVGConfig, train: TrainConfig, accelerator: bool,
                cores: int) -> Optional[str]:
    """The one-line warning for a GPU-sized run on a machine without a GPU, or None.

    Args:
        preset: The preset's name, as given to --preset.
        model: The run's model sizes.
        train: The run's training settings (steps and batch size).
        accelerator: Whether the backend sees a GPU (or TPU).
        cores: CPU cores the run has.

    Returns:
        The line, or None where there is an accelerator or the estimate stays under
        `GPU_SIZED_HOURS`.
    """
    if accelerator:
        return None
    steps = train.epochs * train.steps_per_epoch
    hours = steps * estimated_step_seconds(model, train.batch_size, cores) / 3600
    if hours <= GPU_SIZED_HOURS:
        return None
    return (f"warning: preset {preset!r} is sized for a GPU and no GPU was found: its {steps} steps "
            f"would take roughly {hours:,.0f} hours on {cores} CPU cores (an estimate from the "
            f"model's size); on a CPU use --preset {CPU_PRESET}, or bound the run with "
            "--time-limit MINUTES")


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API outside Linux
        return os.cpu_count() or 1
