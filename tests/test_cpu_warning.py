"""The warning a GPU-sized run gets, before it starts, on a machine without a GPU."""

from keras_cvae.config import replace
from keras_cvae.tasks.svg.config import presets
from keras_cvae.tasks.svg.cpu_warning import conv_multiply_adds, cpu_warning, estimated_step_seconds


def _warning(name, accelerator=False, cores=2, **train_changes):
    preset = presets()[name]
    return cpu_warning(name, preset.model, replace(preset.train, **train_changes), accelerator, cores)


def test_the_default_preset_without_a_gpu_gets_one_line_naming_the_cpu_preset():
    line = _warning("svg")
    assert "\n" not in line and line.startswith("warning: preset 'svg' is sized for a GPU and no GPU was found")
    assert "its 180000 steps would take roughly" in line and "hours on 2 CPU cores" in line
    assert "estimate" in line and "--preset small" in line and "--time-limit" in line
    assert _warning("medium") is not None


def test_no_warning_with_a_gpu_for_a_cpu_sized_preset_or_for_a_short_run():
    assert _warning("svg", accelerator=True) is None
    assert _warning("small") is None and _warning("tiny") is None
    assert _warning("svg", epochs=1, steps_per_epoch=10) is None


def test_the_estimate_follows_the_model_size_and_the_cores():
    svg, medium, small = (presets()[name].model for name in ("svg", "medium", "small"))
    assert conv_multiply_adds(svg) > conv_multiply_adds(medium) > conv_multiply_adds(small)
    assert estimated_step_seconds(svg, 20, 4) * 2 == estimated_step_seconds(svg, 20, 2)
    assert estimated_step_seconds(svg, 40, 2) == 2 * estimated_step_seconds(svg, 20, 2)
