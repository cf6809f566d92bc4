"""Sizes of the pose-conditioned model (`PoseModelConfig`) and the pose presets.

The pose task (the 2024 course lab) predicts 32 x 64 RGB frames of a dancing figure from
the first frame and one pose-label image per frame; see `keras_cvae.tasks.pose.model`.
"""

from dataclasses import dataclass

from keras_cvae.config import DictConfig, Preset, TrainConfig, _check_at_least


@dataclass(frozen=True)
class PoseModelConfig(DictConfig):
    """Sizes of the pose-conditioned CVAE.

    Args:
        height: Frame and label height (32 in the lab).
        width: Frame and label width (64 in the lab).
        channels: Colour channels of frames and labels.
        frame_channels: Feature channels of the frame encoder (the lab's F_dim).
        label_channels: Feature channels of the label encoder (the lab's L_dim).
        latent_channels: Channels of the full-resolution latent z_t (the lab's N_dim).
        fusion_channels: Channels of the decoder fusion (the lab's D_out_dim).
        window_length: Frames of a training window (the lab's train_vi_len).
        video_length: Frames of a validation video, and of the exported rollout (first
            frame included; 630 in the lab).
    """

    height: int = 32
    width: int = 64
    channels: int = 3
    frame_channels: int = 128
    label_channels: int = 32
    latent_channels: int = 12
    fusion_channels: int = 192
    window_length: int = 16
    video_length: int = 630

    def __post_init__(self):
        for name in ("height", "width", "channels", "frame_channels", "label_channels",
                     "latent_channels", "fusion_channels"):
            _check_at_least(self, name, 1)
        _check_at_least(self, "window_length", 2)
        _check_at_least(self, "video_length", 2)

    @property
    def n_past(self) -> int:
        """Context frames: the first frame only."""
        return 1

    @property
    def n_future(self) -> int:
        """Frames predicted per training window."""
        return self.window_length - 1

    @property
    def frame_shape(self) -> tuple:
        return (self.height, self.width, self.channels)

    @property
    def condition_shape(self) -> tuple:
        """A frame's condition: its pose-label image."""
        return self.frame_shape

    @property
    def latent_shape(self) -> tuple:
        return (self.height, self.width, self.latent_channels)


def pose_presets() -> dict:
    """The named pose presets.

    "pose-lab" has the lab reports' sizes (needs a GPU). "pose" is a narrow model that
    trains in a few minutes on a 2-core CPU, for demos. "pose-tiny" is for unit tests.
    The KL weight is the lab's: 1 on the KL summed over every latent value.
    """
    return {
        "pose-lab": Preset(
            PoseModelConfig(),
            TrainConfig(epochs=70, steps_per_epoch=300, validation_steps=1, batch_size=2,
                        learning_rate=1e-4, beta=1.0, kl_cycles=10, tfr_start_decay_epoch=10,
                        tfr_decay_step=0.1, clip_norm=1.0),
        ),
        "pose": Preset(
            PoseModelConfig(frame_channels=16, label_channels=8, latent_channels=4,
                            fusion_channels=24),
            TrainConfig(epochs=4, steps_per_epoch=60, validation_steps=1, batch_size=8,
                        learning_rate=2e-3, beta=1.0, kl_cycles=2, tfr_start_decay_epoch=1,
                        tfr_decay_step=0.25, jit_compile=False, clip_norm=1.0),
        ),
        "pose-tiny": Preset(
            PoseModelConfig(frame_channels=4, label_channels=4, latent_channels=2,
                            fusion_channels=4, window_length=4, video_length=8),
            TrainConfig(epochs=1, steps_per_epoch=2, validation_steps=1, batch_size=2,
                        jit_compile=False, beta=1.0),
        ),
    }
