"""What to export and how strictly to check it (`ExportConfig`), and the export's error."""

from dataclasses import dataclass

# ONNX opsets the export accepts: tf2onnx 1.17 writes up to 18, and the model's ops
# (LSTM cells, resize, gather) are not all convertible below 13.
OPSETS = (13, 18)


class ExportError(RuntimeError):
    """An exported file could not be loaded or disagrees with the Keras model."""


@dataclass(frozen=True)
class ExportConfig:
    """What to export and how strictly to check it.

    Args:
        opset: ONNX opset of both ONNX files.
        saved_model: Also write the TF SavedModel.
        check_batch: Batch size of the random inputs used to check every exported file.
        tolerance: Largest absolute difference to the Keras model the checks accept.
        seed: Seed of the check inputs.
    """

    opset: int = 17
    saved_model: bool = True
    check_batch: int = 2
    tolerance: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        low, high = OPSETS
        if not isinstance(self.opset, int) or not low <= self.opset <= high:
            raise ValueError(f"opset (--opset) must be an integer from {low} to {high}, got {self.opset}")
        if not 0 < self.tolerance < float("inf"):
            raise ValueError(f"tolerance (--tolerance) must be a positive number, got {self.tolerance}")
        if not isinstance(self.check_batch, int) or self.check_batch < 1:
            raise ValueError(f"check_batch must be at least 1, got {self.check_batch}")
