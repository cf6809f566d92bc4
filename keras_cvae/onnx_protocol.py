"""What an export folder holds and how its step model is driven; NumPy only, no TensorFlow.

The export (`keras_cvae.export`) and ONNX inference (`keras_cvae.onnx_inference`) take
their file and tensor names from here, and every task's step protocol runs on `run_steps`.

    saved_models/<name>/
        saved_model/     TF SavedModel, signature "serving_default" = the whole prediction
        model.onnx       the whole prediction (same input and output names)
        step.onnx        one generation step, for streaming (a controller predicting frame by frame)
        metadata.json    the task, configs, names and shapes, the step protocol, the training
                         data and the run's evaluation numbers

The whole prediction takes `context`, `conditions` and `noise` (batch size dynamic) and
gives `frames`; no random op is in any graph, the noise is an input. The step model takes
the latest `frame`, the step's `conditions` and `noise` (and whatever else its task's
protocol says) plus one `state_<part>` input per part of its carried state, and gives
`next_frame` and one `next_state_<part>` per state input. Each task's names, shapes and
protocol are in its `onnx_protocol` module and in metadata.json ("step": "protocol").
"""

import numpy as np

SAVED_MODEL_DIR = "saved_model"
PREDICTION_ONNX = "model.onnx"
STEP_ONNX = "step.onnx"
METADATA_FILE = "metadata.json"

PREDICTION_INPUTS = ("context", "conditions", "noise")
PREDICTION_OUTPUT = "frames"
STEP_OUTPUT = "next_frame"
STATE_PREFIX = "state_"
NEXT_PREFIX = "next_"


def run_steps(session, steps, inputs_at):
    """Runs a step model `steps` times, carrying its state: the driver of every task's
    step protocol.

    Every `state_<part>` input starts at zeros and is then fed its `next_state_<part>`
    output of the step before.

    Args:
        session: An onnxruntime session of a step.onnx.
        steps: How many steps to run.
        inputs_at: (step index, the step before's `next_frame` or None) -> the step's
            inputs other than the state, by name (NumPy arrays, batch first).

    Returns:
        Every step's `next_frame`, stacked on axis 1: [B, steps, ...].
    """
    names = [node.name for node in session.get_outputs()]
    state_inputs = [node for node in session.get_inputs() if node.name.startswith(STATE_PREFIX)]
    state, frame, frames = None, None, []
    for index in range(steps):
        feed = inputs_at(index, frame)
        if state is None:
            batch = len(next(iter(feed.values())))
            state = {node.name: np.zeros([batch, *node.shape[1:]], np.float32) for node in state_inputs}
        outputs = dict(zip(names, session.run(names, {**feed, **state})))
        state = {name: outputs[NEXT_PREFIX + name] for name in state}
        frame = outputs[STEP_OUTPUT]
        frames.append(frame)
    return np.stack(frames, axis=1)
