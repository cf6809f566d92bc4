"""Weights split into parts under a size limit come back whole, or fail naming the file."""

import dataclasses

import keras
import numpy as np
import pytest

from keras_cvae.tasks.svg.config import get_preset
from keras_cvae.tasks.svg.model import SVG
from keras_cvae.weight_parts import MANIFEST, WeightPartsError, join_weights, split_weights

from model_weights import randomize_weights

PART = 200_000


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    model = SVG(get_preset("tiny").model, seed=0)
    randomize_weights(model, seed=3)
    folder = tmp_path_factory.mktemp("parts")
    return model, folder, split_weights(model, folder, part_bytes=PART)


def values(model):
    return [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]


def test_parts_respect_the_limit_and_join_to_the_cast_weights(split):
    model, folder, paths = split
    parts = [p for p in paths if p.name != MANIFEST]
    assert len(parts) > 1 and all(p.stat().st_size <= PART for p in parts)
    fresh = SVG(get_preset("tiny").model, seed=1)
    join_weights(fresh, folder)
    trainable = {w.path for w in model.trainable_weights}
    for variable, original, joined in zip(model.weights, values(model), values(fresh)):
        cast = variable.path in trainable and original.dtype.kind == "f"
        expected = original.astype(np.float16).astype(original.dtype) if cast else original
        np.testing.assert_array_equal(joined, expected)


def test_the_model_state_travels_exact(tmp_path):
    model = SVG(get_preset("tiny").model, seed=0)
    model.schedule_clock.assign([-12345.678, 3.14159265])  # float16 would round both
    split_weights(model, tmp_path)
    fresh = SVG(get_preset("tiny").model, seed=1)
    join_weights(fresh, tmp_path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(fresh.schedule_clock),
                                  np.float32([-12345.678, 3.14159265]))


def test_a_damaged_or_missing_part_or_another_model_is_named(split, tmp_path):
    model, folder, paths = split
    fresh = SVG(get_preset("tiny").model, seed=1)
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in paths:
        (broken / path.name).write_bytes(path.read_bytes())
    first = broken / "weights.part-000"
    first.write_bytes(first.read_bytes()[:-1] + b"\0")
    with pytest.raises(WeightPartsError, match="do not add up"):
        join_weights(fresh, broken)
    first.unlink()
    with pytest.raises(WeightPartsError, match=f"{first}: missing part"):
        join_weights(fresh, broken)
    other = SVG(dataclasses.replace(get_preset("tiny").model, g_dim=8), seed=0)
    with pytest.raises(WeightPartsError, match="another architecture"):
        join_weights(other, folder)
