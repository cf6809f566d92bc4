"""What an export folder holds and how its models are called; NumPy only, no TensorFlow.

Both the export (`keras_cvae.export`) and the ONNX inference (`keras_cvae.onnx_inference`)
take their file names, tensor names, condition columns and the step protocol from here.

    saved_models/<name>/
        saved_model/     TF SavedModel, signature "serving_default" = the whole prediction
        model.onnx       the whole prediction (same input and output names)
        step.onnx        one generation step, for streaming (a controller predicting frame by frame)
        metadata.json    configs, names and shapes, the step protocol, condition statistics,
                         training data and the run's evaluation numbers

Whole prediction (SavedModel and model.onnx), batch size B dynamic:

    context     float32 [B, n_past, 64, 64, 3]        frames in [0, 1]
    conditions  float32 [B, n_past + n_future, 7]      raw (4 action + 3 end-effector) per frame
    noise       float32 [B, n_future, noise_dim]       standard normal; zeros = the prior's mean path
                                                       (noise_dim = z_dim, plus the flattened
                                                       spatial levels of hierarchical latents)
    -> frames   float32 [B, n_future, 64, 64, 3]       in [0, 1]

The conditions are normalised inside the graphs with the training statistics (also listed
in metadata.json for information): pass raw values. No random op is in any graph; the
noise is an input.

Single step (step.onnx). Inputs: `frame` [B, 64, 64, 3] (the latest frame), `conditions`
[B, 2, 7] (raw c_t-1 and c_t), `noise` [B, noise_dim], `is_context` bool [B], and the state
tensors `state_<part>`; outputs: `next_frame` [B, 64, 64, 3] and `next_state_<part>` for
every state input. The state holds the LSTM (h, c) of the predictor (and of the learned
prior) and the encoder skips of the last context frame: a step with `is_context` true
replaces the skips by those of its input frame, otherwise it keeps the carried ones.
`STEP_PROTOCOL` (also written into metadata.json) says how steps reproduce the whole
prediction; `run_step_onnx` follows it.
"""

import numpy as np

SAVED_MODEL_DIR = "saved_model"
PREDICTION_ONNX = "model.onnx"
STEP_ONNX = "step.onnx"
METADATA_FILE = "metadata.json"

PREDICTION_INPUTS = ("context", "conditions", "noise")
PREDICTION_OUTPUT = "frames"
IS_CONTEXT = "is_context"
# The step model's inputs are these, then one STATE_PREFIX + <part> per state part; its
# outputs are STEP_OUTPUT, then NEXT_PREFIX + <state input> for every state input.
STEP_INPUTS = ("frame", "conditions", "noise", IS_CONTEXT)
STEP_OUTPUT = "next_frame"
STATE_PREFIX = "state_"
NEXT_PREFIX = "next_"

ACTION_COLUMNS = ("action_0", "action_1", "action_2", "action_3")
ENDEFFECTOR_COLUMNS = ("endeffector_x", "endeffector_y", "endeffector_z")
CONDITION_COLUMNS = ACTION_COLUMNS + ENDEFFECTOR_COLUMNS

STEP_PROTOCOL = (
    "state = zeros for every state_<part> input (batch B)",
    "for t in 1 .. n_past + n_future - 1:",
    "    frame = context[:, t-1] if t <= n_past else the previous next_frame",
    "    is_context = (t <= n_past) for every batch row",
    "    noise = zeros if t < n_past else noise[:, t - n_past]",
    "    conditions = raw conditions[:, t-1 : t+1] (rows t-1 and t)",
    "    run step; feed each next_state_<part> output back as state_<part>",
    "    if t >= n_past: next_frame is predicted future frame t - n_past",
)


def run_step_onnx(session, inputs, config):
    """Runs the whole prediction by stepping the step model as `STEP_PROTOCOL` says.

    Args:
        session: An onnxruntime session of step.onnx.
        inputs: Prediction inputs as numpy arrays (context, conditions, noise).
        config: The `SVGConfig` (its `n_past` is used).

    Returns:
        The predicted frames [B, n_future, 64, 64, 3].
    """
    context, conditions, noise = (inputs[name] for name in PREDICTION_INPUTS)
    batch, n_past, horizon = context.shape[0], config.n_past, noise.shape[1]
    state = {
        node.name: np.zeros([batch, *node.shape[1:]], np.float32)
        for node in session.get_inputs()
        if node.name.startswith(STATE_PREFIX)
    }
    names = [node.name for node in session.get_outputs()]
    frame, predictions = context[:, 0], []
    for t in range(1, n_past + horizon):
        step_inputs = (
            frame,
            conditions[:, t - 1 : t + 1],
            noise[:, t - n_past] if t >= n_past else np.zeros_like(noise[:, 0]),
            np.full([batch], t <= n_past),
        )
        feed = {**dict(zip(STEP_INPUTS, step_inputs)), **state}
        outputs = dict(zip(names, session.run(names, feed)))
        state = {name: outputs[NEXT_PREFIX + name] for name in state}
        if t >= n_past:
            predictions.append(outputs[STEP_OUTPUT])
        frame = context[:, t] if t < n_past else outputs[STEP_OUTPUT]
    return np.stack(predictions, axis=1)


# ---------------------------------------------------------------------- the pose task
# A pose export (metadata.json "task": "pose") has the same files and prediction names:
#
#     context     float32 [B, 1, 32, 64, 3]             the first frame x_0, in [0, 1]
#     conditions  float32 [B, L, 32, 64, 3]             pose labels p_0..p_L-1 in [0, 1] (p_0 unused)
#     noise       float32 [B, L - 1, 32, 64, N]         z_1..z_L-1, standard normal
#     -> frames   float32 [B, L - 1, 32, 64, 3]         x^_1..x^_L-1
#
# with L the exported rollout length (video_length, 630 for the lab's sizes). The pose step
# carries no state: x^_t = step(x_t-1, p_t, z_t), so stepping it rolls out any length.
POSE_STEP_INPUTS = ("frame", "conditions", "noise")
POSE_STEP_PROTOCOL = (
    "frame = context[:, 0]",
    "for t in 1 .. L - 1:",
    "    frame = next_frame of step(frame, conditions = pose label p_t [B, 32, 64, 3], noise = z_t)",
    "    frame is predicted frame t",
)


def run_pose_step_onnx(session, first_frame, labels, noise):
    """Rolls out the pose step model as `POSE_STEP_PROTOCOL` says.

    Args:
        session: An onnxruntime session of a pose step.onnx.
        first_frame: x_0 [B, H, W, 3] float32 in [0, 1].
        labels: p_1..p_S [B, S, H, W, 3] float32.
        noise: z_1..z_S [B, S, H, W, N] float32.

    Returns:
        x^_1..x^_S [B, S, H, W, 3].
    """
    frame, predictions = first_frame, []
    for t in range(labels.shape[1]):
        feed = dict(zip(POSE_STEP_INPUTS, (frame, labels[:, t], noise[:, t])))
        (frame,) = session.run([STEP_OUTPUT], feed)
        predictions.append(frame)
    return np.stack(predictions, axis=1)
