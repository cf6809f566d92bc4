"""Sizes of the SVG model (`SVGConfig`) and the named SVG presets."""

import math
import numbers
from dataclasses import dataclass

from keras_cvae.config import DictConfig, Preset, TrainConfig, _check, _check_at_least

CONDITION_DIM = 7  # 4 action values then 3 end-effector values, per frame.
PRIORS = ("learned", "fixed")
LATENT_STRUCTURES = ("flat", "hierarchical")
CONDITIONINGS = ("concat", "cconv")


@dataclass(frozen=True)
class SVGConfig(DictConfig):
    """Sizes of the SVG model.

    Args:
        image_size: Height and width of the square frames (the VGG64 nets need 64).
        channels: Colour channels per frame.
        condition_dim: Values per frame of the condition (action + end-effector position).
        g_dim: Size of the frame code produced by the encoder and the predictor.
        z_dim: Size of the latent variable per step.
        rnn_size: Units of every LSTM cell (predictor, posterior, prior).
        predictor_layers: Stacked LSTM cells in the frame predictor.
        posterior_layers: LSTM cells in the posterior network.
        prior_layers: LSTM cells in the learned-prior network.
        width: Multiplier on the VGG channel counts (1.0 = the reference 64..512).
        prior: "learned" (SVG-LP) or "fixed" (N(0, I), SVG-FP).
        latents: "flat" (SVG's one z_t vector per step) or "hierarchical" (z_t plus
            spatial latent maps at the decoder's coarsest resolutions; see
            `keras_cvae.tasks.svg.hierarchy`).
        latent_levels: Spatial levels of hierarchical latents, at 8x8, 16x16, ... pixels.
        latent_channels: Channels of each spatial level's map.
        conditioning: "concat" (the condition is concatenated to the LSTMs' inputs) or
            "cconv" (also modulates every encoder and decoder conv block, Choi et al.'s
            conditional convolution; see `keras_cvae.layers.blocks.ConditionalConv2D`).
        n_past: Context frames given to the model.
        n_future: Frames predicted per training window, and by the exported model. Where a
            rollout predicts any number of frames (evaluation, `SVG.rollout`) that number
            is its `horizon`.
    """

    image_size: int = 64
    channels: int = 3
    condition_dim: int = CONDITION_DIM
    g_dim: int = 128
    z_dim: int = 64
    rnn_size: int = 256
    predictor_layers: int = 2
    posterior_layers: int = 1
    prior_layers: int = 1
    width: float = 1.0
    prior: str = "learned"
    latents: str = "flat"
    latent_levels: int = 2
    latent_channels: int = 4
    conditioning: str = "concat"
    n_past: int = 2
    n_future: int = 10

    def __post_init__(self):
        _check(self.prior in PRIORS, "prior", f"one of {', '.join(PRIORS)}", self.prior)
        _check(self.latents in LATENT_STRUCTURES, "latents", f"one of {', '.join(LATENT_STRUCTURES)}",
               self.latents)
        _check(self.conditioning in CONDITIONINGS, "conditioning", f"one of {', '.join(CONDITIONINGS)}",
               self.conditioning)
        _check(isinstance(self.latent_levels, numbers.Integral) and 1 <= self.latent_levels <= 4,
               "latent_levels", "an integer from 1 to 4 (8x8 up to 64x64 maps)", self.latent_levels)
        _check(self.image_size == 64, "image_size", "64 (the VGG64 networks need 64x64 frames)", self.image_size)
        for name in ("channels", "condition_dim", "g_dim", "z_dim", "rnn_size", "predictor_layers",
                     "posterior_layers", "prior_layers", "latent_channels", "n_past", "n_future"):
            _check_at_least(self, name, 1)
        _check(math.isfinite(self.width) and self.width > 0, "width", "positive", self.width)

    @property
    def level_resolutions(self) -> tuple:
        """Sides of the spatial latent maps, coarsest first; empty for flat latents."""
        if self.latents == "flat":
            return ()
        return tuple(8 << level for level in range(self.latent_levels))

    @property
    def noise_dim(self) -> int:
        """Length of a step's latent (and noise) vector: z_dim plus every spatial level."""
        return self.z_dim + sum(r * r * self.latent_channels for r in self.level_resolutions)

    @property
    def latent_shape(self) -> tuple:
        """Shape of one step's latent (and noise) without the batch: (noise_dim,)."""
        return (self.noise_dim,)

    @property
    def frame_shape(self) -> tuple:
        return (self.image_size, self.image_size, self.channels)

    @property
    def condition_shape(self) -> tuple:
        """A frame's condition: its action and end-effector values."""
        return (self.condition_dim,)

    @property
    def window_length(self) -> int:
        """Frames of a training window, n_past + n_future (a BAIR record holds 30)."""
        return self.n_past + self.n_future


def presets() -> dict:
    """The named presets.

    "svg" is the reference BAIR setting of Denton & Fergus (batch 20 as in the lab).
    "medium" is svg at 3/8 of its VGG channels (24..192): the largest width whose
    model.onnx stays under 25 MB (19.6 MiB; width 0.5 would be about 30), the size of a
    model shipped in the repository.
    "small" is a narrow model that trains in minutes on a laptop CPU, for demos and tests.
    "tiny" is the smallest model that still exercises every layer, for unit tests.
    """
    return {
        "svg": Preset(SVGConfig(), TrainConfig()),
        "medium": Preset(SVGConfig(width=0.375), TrainConfig()),
        "small": Preset(
            SVGConfig(g_dim=64, z_dim=16, rnn_size=128, width=0.125),
            TrainConfig(
                epochs=4,
                steps_per_epoch=75,
                validation_steps=2,
                batch_size=16,
                learning_rate=2e-3,
                kl_cycles=2,
                tfr_start_decay_epoch=2,
                tfr_decay_step=0.2,
                tfr_floor=0.2,
            ),
        ),
        "tiny": Preset(
            SVGConfig(g_dim=16, z_dim=4, rnn_size=16, width=0.0625, n_future=3),
            TrainConfig(epochs=2, steps_per_epoch=3, validation_steps=1, batch_size=4),
        ),
    }


def get_preset(name: str) -> Preset:
    """Returns the preset called `name`.

    Args:
        name: One of the keys of `presets()`.
    """
    available = presets()
    if name not in available:
        raise ValueError(f"Unknown preset {name!r}; choose from {', '.join(available)}")
    return available[name]
