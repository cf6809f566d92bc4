"""The recurrent parts of SVG: frame predictor and Gaussian LSTMs (posterior, prior).

Every layer here is stateless: the recurrent state goes in and comes out of `call` as a
flat tuple (h_1, c_1, ..., h_n, c_n). Keeping it off the layer is what lets the rollout
be traced once, exported, and stepped one frame at a time from onnxruntime.
"""

import keras
from keras import layers, ops

from keras_cvae.layers.blocks import conv_initializer
from keras_cvae.serialization import PACKAGE


def dense(units, **kwargs):
    return layers.Dense(units, kernel_initializer=conv_initializer(), **kwargs)


@keras.saving.register_keras_serializable(package=PACKAGE)
class StackedLSTM(layers.Layer):
    """A dense embedding followed by `num_layers` stacked LSTM cells.

    Args:
        units: Size of the embedding and of every cell.
        num_layers: Number of stacked cells.
    """

    def __init__(self, units, num_layers, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_layers = num_layers
        self.embed = dense(units)
        self.cells = [layers.LSTMCell(units, name=f"cell_{i}") for i in range(num_layers)]

    def build(self, input_shape):
        self.embed.build(input_shape)
        for cell in self.cells:
            cell.build((input_shape[0], self.units))

    def initial_state(self, batch_size):
        """Zero state: a tuple of 2 * num_layers tensors [batch_size, units]."""
        zeros = ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
        return (zeros,) * (2 * self.num_layers)

    def call(self, inputs, state, training=False):
        """Returns (top hidden output [B, units], new state tuple)."""
        x = self.embed(inputs)
        new_state = []
        for index, cell in enumerate(self.cells):
            x, (h, c) = cell(x, list(state[2 * index : 2 * index + 2]), training=training)
            new_state += [h, c]
        return x, tuple(new_state)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "num_layers": self.num_layers}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FramePredictor(layers.Layer):
    """Predicts the next frame code from the current code, latent and condition.

    Args:
        units: LSTM size.
        num_layers: Stacked LSTM cells (2 in the reference).
        output_dim: Size of the predicted code (g_dim), squashed by tanh like the encoder's.
    """

    def __init__(self, units, num_layers, output_dim, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_layers = num_layers
        self.output_dim = output_dim
        self.lstm = StackedLSTM(units, num_layers, name="lstm")
        self.project = dense(output_dim)

    def build(self, input_shape):
        self.lstm.build(input_shape)
        self.project.build((input_shape[0], self.units))

    def initial_state(self, batch_size):
        return self.lstm.initial_state(batch_size)

    def call(self, inputs, state, training=False):
        """Returns (code [B, output_dim], new state)."""
        hidden, state = self.lstm(inputs, state, training=training)
        return ops.tanh(self.project(hidden)), state

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "output_dim": self.output_dim,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class GaussianLSTM(layers.Layer):
    """An LSTM whose output is a diagonal Gaussian: the posterior and the learned prior.

    Args:
        units: LSTM size.
        num_layers: Stacked LSTM cells (1 in the reference).
        latent_dim: Size of z.
    """

    def __init__(self, units, num_layers, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_layers = num_layers
        self.latent_dim = latent_dim
        self.lstm = StackedLSTM(units, num_layers, name="lstm")
        # Mean and log variance stay float32 under mixed precision: exp(logvar) overflows fp16.
        self.mean = dense(latent_dim, dtype="float32", name="mean")
        self.log_variance = dense(latent_dim, dtype="float32", name="log_variance")

    def build(self, input_shape):
        self.lstm.build(input_shape)
        self.mean.build((input_shape[0], self.units))
        self.log_variance.build((input_shape[0], self.units))

    def initial_state(self, batch_size):
        return self.lstm.initial_state(batch_size)

    def call(self, inputs, state, training=False):
        """Returns (mean [B, latent_dim], log variance [B, latent_dim], new state)."""
        hidden, state = self.lstm(inputs, state, training=training)
        return self.mean(hidden), self.log_variance(hidden), state

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "latent_dim": self.latent_dim,
        }
