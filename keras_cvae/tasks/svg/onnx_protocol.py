"""The tensors of an SVG export and its step protocol; NumPy only, no TensorFlow.

The folder and the names every task shares are in `keras_cvae.onnx_protocol`.

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

from keras_cvae.onnx_protocol import PREDICTION_INPUTS, run_steps

IS_CONTEXT = "is_context"
# The step model's inputs are these, then one STATE_PREFIX + <part> per state part; its
# outputs are STEP_OUTPUT, then NEXT_PREFIX + <state input> for every state input.
STEP_INPUTS = ("frame", "conditions", "noise", IS_CONTEXT)

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


def skip_frames(steps, n_context):
    """The frame whose encoder skips each step t = 1..steps decodes with: the newest context
    frame it has seen, x_min(t-1, n_context-1). A step is a context step (is_context) where
    that is its own input frame x_t-1, and only then does it replace the carried skips.

    The rule of `SVG.step`, `SVG.rollout`, the batched teacher-forced rollout and
    `STEP_PROTOCOL` alike.

    Args:
        steps: Steps of the rollout.
        n_context: Ground-truth frames fed first (n_past).

    Returns:
        A list of `steps` frame indices.
    """
    return [min(t - 1, n_context - 1) for t in range(1, steps + 1)]


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
    steps = n_past + horizon - 1
    sources = skip_frames(steps, n_past)

    def inputs_at(index, previous):
        t = index + 1
        is_context = sources[index] == t - 1
        step_inputs = (
            context[:, t - 1] if is_context else previous,
            conditions[:, t - 1 : t + 1],
            noise[:, t - n_past] if t >= n_past else np.zeros_like(noise[:, 0]),
            np.full([batch], is_context),
        )
        return dict(zip(STEP_INPUTS, step_inputs))

    return run_steps(session, steps, inputs_at)[:, n_past - 1 :]
