"""The pose model's full-resolution networks: encoders, Gaussian predictor, fusion, generator.

Every network keeps the frame's height and width (the lab's spatial latent is at full
resolution) and is built from the VGG model's `ConvBlock` (3x3 conv, BatchNorm, LeakyReLU).
"""

import keras
from keras import layers, ops

from keras_cvae.layers.blocks import ConvBlock, conv_initializer
from keras_cvae.serialization import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConvStack(layers.Layer):
    """`ConvBlock`s in sequence, each with its own channel count.

    Args:
        filters: Output channels of each block, in order.
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = [int(f) for f in filters]
        self.blocks = [ConvBlock(f, name=f"block{i}") for i, f in enumerate(self.filters)]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)

    def call(self, inputs, training=False):
        x = inputs
        for block in self.blocks:
            x = block(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters[-1])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def feature_encoder(channels, name):
    """A frame or label encoder: RGB [N, H, W, 3] -> features [N, H, W, channels].

    Args:
        channels: Output feature channels.
        name: Layer name.
    """
    return ConvStack([max(channels // 2, 1), channels], name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class GaussianPredictor(layers.Layer):
    """q(z_t | x_t, pose_t): (mean, log variance) of a spatial latent from two feature maps.

    Args:
        hidden: Channels of the hidden block.
        latent_channels: Channels of z_t (the lab's N_dim).
    """

    def __init__(self, hidden, latent_channels, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        self.latent_channels = latent_channels
        self.block = ConvBlock(hidden, name="block")
        self.to_moments = layers.Conv2D(2 * latent_channels, 3, padding="same",
                                        kernel_initializer=conv_initializer(), dtype="float32",
                                        name="to_moments")

    def build(self, input_shape):
        frame_shape, label_shape = input_shape
        joined = (*frame_shape[:-1], frame_shape[-1] + label_shape[-1])
        self.block.build(joined)
        self.to_moments.build(self.block.compute_output_shape(joined))

    def call(self, inputs, training=False):
        """Args: (frame features, label features), [N, H, W, *]. Returns float32 (mean, log variance)."""
        frame_features, label_features = inputs
        x = self.block(ops.concatenate([frame_features, label_features], axis=-1), training=training)
        moments = self.to_moments(x)
        return moments[..., : self.latent_channels], moments[..., self.latent_channels :]

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "latent_channels": self.latent_channels}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FrameGenerator(layers.Layer):
    """The lab's "decoder fusion" and "generator": features of x_t-1, pose_t and z_t -> x^_t.

    Args:
        fusion_channels: Channels of the fusion blocks (the lab's D_out_dim).
        channels: Colour channels of the frame.
    """

    def __init__(self, fusion_channels, channels=3, **kwargs):
        super().__init__(**kwargs)
        self.fusion_channels = fusion_channels
        self.channels = channels
        self.fusion = ConvStack([fusion_channels, fusion_channels], name="fusion")
        self.generator = ConvBlock(max(fusion_channels // 2, 1), name="generator")
        # float32 under mixed precision: the sigmoid saturates in float16.
        self.to_frame = layers.Conv2D(channels, 3, padding="same", kernel_initializer=conv_initializer(),
                                      dtype="float32", name="to_frame")

    def build(self, input_shape):
        shape = (*input_shape[0][:-1], sum(s[-1] for s in input_shape))
        self.fusion.build(shape)
        shape = self.fusion.compute_output_shape(shape)
        self.generator.build(shape)
        self.to_frame.build(self.generator.compute_output_shape(shape))

    def call(self, inputs, training=False):
        """Args: (frame features, label features, z), [N, H, W, *]. Returns [N, H, W, C] in [0, 1]."""
        dtype = self.compute_dtype
        x = ops.concatenate([ops.cast(part, dtype) for part in inputs], axis=-1)
        x = self.generator(self.fusion(x, training=training), training=training)
        return ops.sigmoid(self.to_frame(x))

    def get_config(self):
        return {**super().get_config(), "fusion_channels": self.fusion_channels, "channels": self.channels}
