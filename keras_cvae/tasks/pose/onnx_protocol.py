"""The tensors of a pose export and its step protocol; NumPy only, no TensorFlow.

A pose export (metadata.json "task": "pose") has the files and prediction names of every
export (`keras_cvae.onnx_protocol`):

    context     float32 [B, 1, 32, 64, 3]             the first frame x_0, in [0, 1]
    conditions  float32 [B, L, 32, 64, 3]             pose labels p_0..p_L-1 in [0, 1] (p_0 unused)
    noise       float32 [B, L - 1, 32, 64, N]         z_1..z_L-1, standard normal
    -> frames   float32 [B, L - 1, 32, 64, 3]         x^_1..x^_L-1

with L the exported rollout length (video_length, 630 for the lab's sizes). The pose step
carries no state: x^_t = step(x_t-1, p_t, z_t), so stepping it rolls out any length.
"""

from keras_cvae.onnx_protocol import run_steps

STEP_INPUTS = ("frame", "conditions", "noise")
STEP_PROTOCOL = (
    "frame = context[:, 0]",
    "for t in 1 .. L - 1:",
    "    frame = next_frame of step(frame, conditions = pose label p_t [B, 32, 64, 3], noise = z_t)",
    "    frame is predicted frame t",
)


def run_step_onnx(session, first_frame, labels, noise):
    """Rolls out the pose step model as `STEP_PROTOCOL` says.

    Args:
        session: An onnxruntime session of a pose step.onnx.
        first_frame: x_0 [B, H, W, 3] float32 in [0, 1].
        labels: p_1..p_S [B, S, H, W, 3] float32.
        noise: z_1..z_S [B, S, H, W, N] float32.

    Returns:
        x^_1..x^_S [B, S, H, W, 3].
    """
    def inputs_at(t, previous):
        frame = first_frame if previous is None else previous
        return dict(zip(STEP_INPUTS, (frame, labels[:, t], noise[:, t])))

    return run_steps(session, labels.shape[1], inputs_at)
