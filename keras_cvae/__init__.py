"""keras-cvae: SVG conditional VAE for action-conditioned video prediction in Keras 3."""

__version__ = "0.1.0"
