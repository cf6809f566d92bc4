"""VGG-style 64x64 frame encoder and decoder of SVG, with skip connections.

With a `condition_dim` their conv blocks are Choi et al.'s conditional convolutions
(`ConditionalConv2D`); with `latent_channels` the decoder also takes one spatial latent
map per resolution, coarsest first (the hierarchical latents of `layers.hierarchy`).
"""

import keras
from keras import layers, ops

from keras_cvae.layers.blocks import ConvBlock, batch_norm, conv_initializer, scaled_channels, upsample_nearest
from keras_cvae.serialization import PACKAGE


def _stage(filters, name, condition_dim):
    return [ConvBlock(f, condition_dim, name=f"{name}_{i}") for i, f in enumerate(filters)]


def _run_stage(blocks, x, condition, training):
    for block in blocks:
        x = block(x, condition, training=training)
    return x


@keras.saving.register_keras_serializable(package=PACKAGE)
class VGGEncoder(layers.Layer):
    """Encodes a 64x64 frame into a tanh code and four skip tensors.

    Stages at 64, 32, 16 and 8 pixels (64, 128, 256, 512 channels at width 1) are each
    followed by max pooling; a 4x4 valid convolution turns the 4x4 map into the code.

    Args:
        g_dim: Size of the code.
        width: Channel multiplier (1.0 = reference).
        condition_dim: None for plain conv blocks, else the length of the condition of
            their conditional convolutions.
    """

    def __init__(self, g_dim, width=1.0, condition_dim=None, **kwargs):
        super().__init__(**kwargs)
        self.g_dim = g_dim
        self.width = width
        self.condition_dim = condition_dim
        c = [scaled_channels(b, width) for b in (64, 128, 256, 512)]
        self.skip_channels = c
        self.stages = [
            _stage([c[0], c[0]], "stage64", condition_dim),
            _stage([c[1], c[1]], "stage32", condition_dim),
            _stage([c[2]] * 3, "stage16", condition_dim),
            _stage([c[3]] * 3, "stage8", condition_dim),
        ]
        self.pool = layers.MaxPooling2D(2)
        self.to_code = layers.Conv2D(
            g_dim, 4, padding="valid", kernel_initializer=conv_initializer()
        )
        self.code_norm = batch_norm()

    def call(self, frames, condition=None, training=False):
        """Returns (code [N, g_dim], [skip64, skip32, skip16, skip8]).

        Args:
            frames: [N, 64, 64, C].
            condition: [N, condition_dim] for conditional conv blocks, else unused.
            training: BatchNorm mode.
        """
        skips = []
        x = frames
        for index, blocks in enumerate(self.stages):
            if index:
                x = self.pool(x)
            x = _run_stage(blocks, x, condition, training)
            skips.append(x)
        code = ops.tanh(self.code_norm(self.to_code(self.pool(x)), training=training))
        return ops.reshape(code, (-1, self.g_dim)), skips

    def skip_shapes(self, image_size):
        """Shapes (without batch) of the four skips of an `image_size` frame, finest first.

        Args:
            image_size: Height and width of the input frames.
        """
        return [
            (image_size >> level, image_size >> level, channels)
            for level, channels in enumerate(self.skip_channels)
        ]

    def get_config(self):
        return {
            **super().get_config(),
            "g_dim": self.g_dim,
            "width": self.width,
            "condition_dim": self.condition_dim,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class VGGDecoder(layers.Layer):
    """Mirror of `VGGEncoder`: turns a code and the skips back into a frame in [0, 1].

    A 4x4 transposed convolution expands the code to 4x4; each stage then upsamples x2
    (nearest), concatenates the encoder skip of that resolution (and the latent map of
    that resolution, if any) and applies VGG blocks.

    Args:
        g_dim: Size of the code.
        width: Channel multiplier (1.0 = reference).
        channels: Colour channels of the output frame.
        condition_dim: None for plain conv blocks, else the length of the condition of
            their conditional convolutions.
    """

    def __init__(self, g_dim, width=1.0, channels=3, condition_dim=None, **kwargs):
        super().__init__(**kwargs)
        self.g_dim = g_dim
        self.width = width
        self.channels = channels
        self.condition_dim = condition_dim
        c = [scaled_channels(b, width) for b in (64, 128, 256, 512)]
        self.from_code = layers.Conv2DTranspose(
            c[3], 4, padding="valid", kernel_initializer=conv_initializer()
        )
        self.code_norm = batch_norm()
        self.stages = [
            _stage([c[3], c[3], c[2]], "stage8", condition_dim),
            _stage([c[2], c[2], c[1]], "stage16", condition_dim),
            _stage([c[1], c[0]], "stage32", condition_dim),
            _stage([c[0]], "stage64", condition_dim),
        ]
        # The output layers stay float32 under mixed precision: the sigmoid saturates in fp16.
        self.to_frame = layers.Conv2DTranspose(
            channels, 3, padding="same", kernel_initializer=conv_initializer(), dtype="float32"
        )

    def call(self, code, skips, latent_maps=(), condition=None, training=False):
        """Decodes a frame [N, 64, 64, C].

        Args:
            code: [N, g_dim].
            skips: As returned by the encoder, finest first.
            latent_maps: Spatial latents [N, r, r, k] for the coarsest stages, coarsest
                (r = 8) first; may be empty.
            condition: [N, condition_dim] for conditional conv blocks, else unused.
            training: BatchNorm mode.
        """
        x = ops.reshape(code, (-1, 1, 1, self.g_dim))
        x = ops.leaky_relu(self.code_norm(self.from_code(x), training=training), 0.2)
        maps = list(latent_maps) + [None] * (len(self.stages) - len(latent_maps))
        for blocks, skip, latent in zip(self.stages, reversed(skips), maps):
            parts = [upsample_nearest(x), ops.cast(skip, x.dtype)]
            if latent is not None:
                parts.append(ops.cast(latent, x.dtype))
            x = _run_stage(blocks, ops.concatenate(parts, axis=-1), condition, training)
        return ops.sigmoid(self.to_frame(x))

    def get_config(self):
        return {
            **super().get_config(),
            "g_dim": self.g_dim,
            "width": self.width,
            "channels": self.channels,
            "condition_dim": self.condition_dim,
        }
