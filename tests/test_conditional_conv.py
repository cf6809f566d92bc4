"""Conditional convolution (Choi et al. 2019): the formula, serialization, its use in SVG."""

import dataclasses

import keras
import numpy as np
import pytest
from keras import layers, ops

from keras_cvae.layers.blocks import ConditionalConv2D, ConvBlock
from keras_cvae.tasks.svg.config import get_preset
from keras_cvae.tasks.svg.model import SVG
from keras_cvae.tasks.svg.vgg import VGGDecoder, VGGEncoder

TINY = get_preset("tiny").model


def conditional_conv(seed=0, filters=5, condition_dim=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    c = rng.normal(size=(2, condition_dim)).astype("float32")
    layer = ConditionalConv2D(filters, 3, condition_dim)
    layer(x, c)
    return layer, x, c


def plain_conv(kernel, x):
    """An independent convolution with the same kernel and no bias."""
    conv = layers.Conv2D(kernel.shape[-1], kernel.shape[0], padding="same", use_bias=False)
    conv.build(x.shape)
    conv.kernel.assign(kernel)
    return ops.convert_to_numpy(conv(x))


def test_with_zero_u_and_v_it_is_softplus_0_times_the_plain_conv():
    layer, x, c = conditional_conv()
    assert not np.any(ops.convert_to_numpy(layer.scale_weights))  # zero at initialisation
    expected = np.log(2.0) * plain_conv(ops.convert_to_numpy(layer.conv.kernel), x)
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x, c)), expected, rtol=1e-5, atol=1e-6)


def test_each_channel_is_scaled_by_softplus_u_c_and_shifted_by_v_c():
    layer, x, c = conditional_conv(seed=1)
    rng = np.random.default_rng(2)
    u, v = rng.normal(size=(2, 3, 5)).astype("float32")
    layer.scale_weights.assign(u)
    layer.bias_weights.assign(v)
    scale = np.log1p(np.exp(c @ u))[:, None, None, :]
    bias = (c @ v)[:, None, None, :]
    expected = scale * plain_conv(ops.convert_to_numpy(layer.conv.kernel), x) + bias
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x, c)), expected, rtol=1e-5, atol=1e-5)
    # Rows with other conditions get other outputs from the same image.
    swapped = ops.convert_to_numpy(layer(x[[0, 0]], c[[0, 1]]))
    assert np.abs(swapped[0] - swapped[1]).max() > 1e-2


@pytest.mark.parametrize("make", [
    lambda: ConditionalConv2D(5, 3, 3, name="cconv"),
    lambda: ConvBlock(5, 3, name="block"),
    lambda: VGGEncoder(8, 0.0625, 7, name="encoder"),
    lambda: VGGDecoder(8, 0.0625, 3, 14, name="decoder"),
], ids=["ConditionalConv2D", "ConvBlock", "VGGEncoder", "VGGDecoder"])
def test_layers_round_trip_their_config(make):
    layer = make()
    config = layer.get_config()
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is type(layer) and clone.get_config() == config
    assert config.get("condition_dim") is not None


def test_cconv_model_conditions_every_conv_block():
    """Every encoder and decoder VGG block is conditional; the frame's own c conditions
    the encoder (7 values) and the step's pair (14) the decoder."""
    model = SVG(dataclasses.replace(TINY, conditioning="cconv"), seed=0)
    encoder_blocks = [b for stage in model.encoder.stages for b in stage]
    decoder_blocks = [b for stage in model.decoder.stages for b in stage]
    assert {b.condition_dim for b in encoder_blocks} == {7}
    assert {b.condition_dim for b in decoder_blocks} == {14}
    assert all(isinstance(b.conv, ConditionalConv2D) for b in encoder_blocks + decoder_blocks)
    plain = SVG(TINY, seed=0)
    assert not any(isinstance(b.conv, ConditionalConv2D) for stage in plain.encoder.stages for b in stage)
