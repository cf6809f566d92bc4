"""Convolution building blocks every model family shares: initialisers, BatchNorm, conv
blocks (plain or Choi et al.'s conditional convolution) and nearest-neighbour upsampling."""

import keras
from keras import layers, ops

from keras_cvae import backends
from keras_cvae.serialization import PACKAGE


def conv_initializer():
    """N(0, 0.02), the reference's init for conv and dense kernels."""
    return keras.initializers.RandomNormal(stddev=0.02)


def batch_norm():
    """BatchNorm with gamma ~ N(1, 0.02), as the reference initialises it.

    Built within a TensorFlow `backends.data_parallel` block it normalises with the
    statistics of the global batch, all-reduced across the replicas; elsewhere with those
    of the batch it sees (on JAX, the global batch).
    """
    return layers.BatchNormalization(
        momentum=0.9,
        epsilon=1e-5,
        gamma_initializer=keras.initializers.RandomNormal(mean=1.0, stddev=0.02),
        synchronized=backends.replicas() > 1,
    )


def scaled_channels(base, width):
    """Channel count of a reference layer with `base` channels at width multiplier `width`.

    Args:
        base: Channels in the reference network.
        width: Multiplier; results are at least 4 so tiny presets keep every layer.
    """
    return max(4, int(round(base * width)))


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConditionalConv2D(layers.Layer):
    """Conditional convolution (Choi, El-Khamy and Lee 2019), "same" padding, stride 1.

    Output channel j is `softplus(u_j . c) * (W_j * x) + v_j . c`: the condition c scales
    and shifts each channel; the convolution has no bias of its own. Choi et al.'s c is a
    one-hot rate; here it is a normalised condition vector. u and v start at zero, so the
    layer starts as softplus(0) = log 2 times a plain convolution.

    Args:
        filters: Output channels.
        kernel_size: Side of the square kernel.
        condition_dim: Length of c.
    """

    def __init__(self, filters, kernel_size, condition_dim, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.condition_dim = condition_dim
        self.conv = layers.Conv2D(
            filters, kernel_size, padding="same", use_bias=False,
            kernel_initializer=conv_initializer(),
        )

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.scale_weights = self.add_weight(
            shape=(self.condition_dim, self.filters), initializer="zeros", name="scale_weights"
        )
        self.bias_weights = self.add_weight(
            shape=(self.condition_dim, self.filters), initializer="zeros", name="bias_weights"
        )

    def call(self, inputs, condition):
        """Args: inputs [N, H, W, C_in]; condition [N, condition_dim]. Returns [N, H, W, filters]."""
        condition = ops.cast(condition, self.compute_dtype)
        scale = ops.softplus(ops.matmul(condition, ops.cast(self.scale_weights, self.compute_dtype)))
        bias = ops.matmul(condition, ops.cast(self.bias_weights, self.compute_dtype))
        per_channel = lambda v: ops.reshape(v, (-1, 1, 1, self.filters))  # noqa: E731
        return per_channel(scale) * self.conv(inputs) + per_channel(bias)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "condition_dim": self.condition_dim,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConvBlock(layers.Layer):
    """3x3 convolution, BatchNorm, LeakyReLU(0.2): the reference's `vgg_layer`.

    Args:
        filters: Output channels.
        condition_dim: None for a plain convolution, else the length of the condition of
            a `ConditionalConv2D`.
    """

    def __init__(self, filters, condition_dim=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.condition_dim = condition_dim
        if condition_dim is None:
            self.conv = layers.Conv2D(
                filters, 3, padding="same", kernel_initializer=conv_initializer()
            )
        else:
            self.conv = ConditionalConv2D(filters, 3, condition_dim, name="conditional_conv")
        self.norm = batch_norm()

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.norm.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, condition=None, training=False):
        if self.condition_dim is None:
            x = self.conv(inputs)
        else:
            x = self.conv(inputs, condition)
        return ops.leaky_relu(self.norm(x, training=training), 0.2)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "condition_dim": self.condition_dim}


def upsample_nearest(x):
    """Doubles height and width by repeating pixels: [N, H, W, C] -> [N, 2H, 2W, C].

    Built from concatenate and reshape rather than `UpSampling2D`, whose repeat/tile
    gradient needs shapes that XLA cannot know inside the training while loop.
    """
    height, width, channels = x.shape[1:]
    x = ops.expand_dims(ops.expand_dims(x, 2), 4)
    x = ops.concatenate([x, x], axis=2)
    x = ops.concatenate([x, x], axis=4)
    return ops.reshape(x, (-1, 2 * height, 2 * width, channels))
