"""The package name under which every layer and model of keras-cvae registers for Keras
serialization: a saved `.keras` file names its classes as "keras_cvae>ClassName"."""

PACKAGE = "keras_cvae"
