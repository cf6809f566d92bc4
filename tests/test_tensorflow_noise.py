"""Which of TensorFlow's start-up lines reach stderr, for each TF_CPP_MIN_LOG_LEVEL."""

from keras_cvae.tensorflow_noise import ABSL_EARLY_BANNER, kept_lines

ONEDNN = ("I0000 00:00:1796468315.396393   27191 port.cc:153] oneDNN custom operations are on. "
          "To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n")
DRIVERS = ("I0000 00:00:1796468315.396658   27191 cudart_stub.cc:31] Could not find cuda drivers "
           "on your machine, GPU will not be used.\n")
A_WARNING = "W0000 00:00:1796468315.4   27191 some_file.cc:12] a warning\n"
CUINIT = ("E0000 00:00:1796468318.025647   27191 cuda_platform.cc:52] failed call to cuInit: "
          "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
AN_ERROR = "E0000 00:00:1796468318.1   27191 other.cc:7] a real error\n"
FATAL = "F0000 00:00:1796468318.2   27191 other.cc:8] a fatal error\n"
PYTHON_WARNING = "/x/y.py:3: DeprecationWarning: something\n"
START_UP = [ABSL_EARLY_BANNER + "\n", ONEDNN, DRIVERS, A_WARNING, CUINIT, AN_ERROR, FATAL, PYTHON_WARNING]


def test_the_default_level_keeps_errors_and_what_is_not_absls():
    assert kept_lines(START_UP, 2, drop_cuinit=True) == [AN_ERROR, FATAL, PYTHON_WARNING]


def test_a_level_the_user_set_is_followed():
    assert kept_lines(START_UP, 0, drop_cuinit=False) == START_UP
    assert kept_lines(START_UP, 1, drop_cuinit=False) == [A_WARNING, CUINIT, AN_ERROR, FATAL, PYTHON_WARNING]
    assert kept_lines(START_UP, 3, drop_cuinit=False) == [FATAL, PYTHON_WARNING]


def test_the_cuinit_failure_stays_where_a_gpu_exists():
    assert CUINIT in kept_lines(START_UP, 2, drop_cuinit=False)
    assert CUINIT not in kept_lines(START_UP, 0, drop_cuinit=True)
