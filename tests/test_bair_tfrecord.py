"""The BAIR TFRecord schema: hand-written Examples, the writer, the generator's files, and
the TensorFlow-free framing, CRC-32C and Example codec checked against TensorFlow."""

import re
import struct

import numpy as np
import pytest
import tensorflow as tf

from keras_cvae.data import DataError
from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data import crc32c, example_proto, make_dataset, tfrecord
from keras_cvae.data.generate import _file_plan, write_generated_dataset

from conftest import random_sequence


def hand_written_example(seq, *, skip=(), image_bytes=None, action_override=None):
    """A BAIR Example built directly with tf.train (not the project's writer), keys in BAIR order."""
    feature = {}
    for t in range(30):
        for cam in ("image_main", "image_aux1"):
            raw = seq[cam][t].tobytes()
            if image_bytes is not None and cam == "image_aux1" and t == 3:
                raw = raw[:image_bytes]
            feature[f"{t}/{cam}/encoded"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[raw]))
        action = seq["action"][t].tolist()
        if action_override is not None and t == 5:
            action = action_override
        feature[f"{t}/action"] = tf.train.Feature(float_list=tf.train.FloatList(value=action))
        feature[f"{t}/endeffector_pos"] = tf.train.Feature(
            float_list=tf.train.FloatList(value=seq["endeffector_pos"][t].tolist()))
    for key in skip:
        del feature[key]
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_raw(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as w:
        for r in records:
            w.write(r)


def test_hand_written_bair_examples_parse_exactly(tmp_path):
    rng = np.random.default_rng(1)
    seqs = [random_sequence(rng) for _ in range(3)]
    write_raw(tmp_path / "softmotion30_44k" / "test" / "traj_0_to_2.tfrecords", [hand_written_example(s) for s in seqs])
    batch = next(iter(make_dataset(tmp_path, "test", n_past=2, n_future=28, batch_size=8, training=False)))
    frames, conditions = batch["frames"].numpy(), batch["conditions"].numpy()
    assert frames.shape == (3, 30, 64, 64, 3) and conditions.shape == (3, 30, 7)
    np.testing.assert_array_equal(np.rint(frames * 255).astype(np.uint8), np.stack([s["image_aux1"] for s in seqs]))
    expected = np.stack([np.concatenate([s["action"], s["endeffector_pos"]], -1) for s in seqs])
    np.testing.assert_array_equal(conditions, expected)
    # The numpy reader agrees, for both cameras.
    got = list(bair.read_sequences(tmp_path / "softmotion30_44k" / "test" / "traj_0_to_2.tfrecords"))
    for g, s in zip(got, seqs):
        for key in bair.SEQUENCE_SPEC:
            np.testing.assert_array_equal(g[key], s[key])


def test_writer_round_trip_and_framing_count(tmp_path):
    rng = np.random.default_rng(2)
    seqs = [random_sequence(rng) for _ in range(4)]
    path = bair.write_sequences(tmp_path / bair.file_name(0, 3), seqs)
    assert bair.scan_record_framing(path) == 4
    for g, s in zip(bair.read_sequences(path), seqs):
        for key in bair.SEQUENCE_SPEC:
            np.testing.assert_array_equal(g[key], s[key])
    assert bair.validate_tfrecords(tmp_path) == {str(path): 4}


def test_writer_refuses_bad_sequence_and_leaves_nothing(tmp_path):
    rng = np.random.default_rng(3)
    good, bad = random_sequence(rng), random_sequence(rng)
    bad["action"][4, 1] = np.nan
    with pytest.raises(DataError, match=r"traj_0_to_1\.tfrecords: record 1: action contains NaN"):
        bair.write_sequences(tmp_path / bair.file_name(0, 1), [good, bad])
    assert list(tmp_path.iterdir()) == []
    wrong = random_sequence(rng)
    wrong["image_aux1"] = wrong["image_aux1"][:, :32]
    with pytest.raises(DataError, match="image_aux1 has shape"):
        bair.write_sequences(tmp_path / bair.file_name(0, 0), [wrong])
    assert list(tmp_path.iterdir()) == []


def test_file_plan_names_files_by_absolute_index():
    plan = _file_plan(300)
    assert [name for name, _ in plan] == ["traj_0_to_255.tfrecords", "traj_256_to_299.tfrecords"]
    assert plan[1][1][0] == 256 and plan[1][1][-1] == 299
    assert bair.file_range("traj_256_to_511.tfrecords") == (256, 511)
    assert bair.file_range("other.tfrecords") is None


def test_files_sorted_by_start_index_not_name(tmp_path):
    for start, stop in ((0, 255), (1024, 1279), (256, 511)):
        (tmp_path / bair.file_name(start, stop)).write_bytes(b"x")
    names = [p.name for p in bair.list_tfrecord_files(tmp_path)]
    assert names == ["traj_0_to_255.tfrecords", "traj_256_to_511.tfrecords", "traj_1024_to_1279.tfrecords"]


def test_a_write_cut_short_is_not_data(small_bair_dir):
    # What a killed atomic write leaves: a hidden temporary beside the files, with their suffix.
    root, _ = small_bair_dir
    partial = root / "train" / ".traj_5_to_9.tmp-123-abcd.tfrecords"
    partial.write_bytes((root / "train" / bair.file_name(0, 2)).read_bytes()[:-7])
    assert partial.name not in [p.name for p in bair.list_tfrecord_files(root / "train")]
    assert all(".tmp-" not in name for name in bair.validate_tfrecords(root))


def test_generator_same_seed_identical_files_different_seed_differs(tmp_path):
    a = write_generated_dataset(tmp_path / "a", n_train=3, n_test=1, seed=5, workers=2, progress=False)
    b = write_generated_dataset(tmp_path / "b", n_train=3, n_test=1, seed=5, workers=1, progress=False)
    c = write_generated_dataset(tmp_path / "c", n_train=3, n_test=1, seed=6, workers=2, progress=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*.tfrecords"))
    assert [str(f) for f in files] == ["test/traj_0_to_0.tfrecords", "train/traj_0_to_2.tfrecords"]
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes()
        assert (a / f).read_bytes() != (c / f).read_bytes()


def test_generator_refuses_non_empty_destination(generated_dir):
    with pytest.raises(DataError, match="already holds"):
        write_generated_dataset(generated_dir, n_train=1, n_test=0, seed=0, progress=False)


def test_simulator_workers_do_not_import_tensorflow():
    # Rendering in a process that has imported TensorFlow can crash. A spawned worker
    # imports exactly this chain.
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, keras_cvae.data.generate as g; g._simulate_record(('pushing', 0, 0)); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


# ---- TFRecord framing, CRC-32C and the Example codec, against TensorFlow ----------------------


def bitwise_crc32c(data: bytes) -> int:
    """The textbook bit-at-a-time CRC-32C, an independent reference."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_crc32c_check_values_and_reference():
    assert crc32c.crc32c(b"123456789") == 0xE3069283  # the CRC catalogue's check value
    assert crc32c.crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720, B.4
    assert crc32c.crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c.crc32c(bytes(range(32))) == 0x46DD794E
    rng = np.random.default_rng(0)
    for size in [0, 1, 7, 8, 9, 63, 64, 65, 127, 128, 1000, 4099]:
        data = rng.bytes(size)
        assert crc32c.crc32c(data) == bitwise_crc32c(data), size
        assert crc32c.crc32c(memoryview(data)) == crc32c.crc32c(bytearray(data))


def test_framing_is_byte_identical_to_tensorflows(tmp_path):
    rng = np.random.default_rng(1)
    payloads = [rng.bytes(n) for n in (0, 1, 7, 100, 12_345, 65_536, 750_013)]
    write_raw(tmp_path / "tf.tfrecords", payloads)
    assert tfrecord.write_records(tmp_path / "ours.tfrecords", payloads) == len(payloads)
    assert (tmp_path / "ours.tfrecords").read_bytes() == (tmp_path / "tf.tfrecords").read_bytes()
    assert [bytes(p) for p in tfrecord.iter_records(tmp_path / "tf.tfrecords")] == payloads
    index = tfrecord.index_records(tmp_path / "tf.tfrecords")
    assert list(index.lengths) == [len(p) for p in payloads]
    assert [bytes(tfrecord.read_record(index, i)) for i in (6, 0, 3)] == [payloads[6], payloads[0], payloads[3]]


def tf_feature(feature):
    """A tf.train.Feature holding the same list as an example_proto.Feature."""
    if feature.kind == "bytes":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(feature.values)))
    if feature.kind == "float":
        return tf.train.Feature(float_list=tf.train.FloatList(value=feature.values.tolist()))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=feature.values.tolist()))


def test_example_codec_matches_tensorflows_protobuf():
    rng = np.random.default_rng(2)
    features = {
        "0/image": example_proto.bytes_feature([rng.bytes(12_288), b"", b"x"]),
        "a/float": example_proto.float_feature([1.5, -2.0, np.inf, 3e-39]),
        "b/int": example_proto.int64_feature([0, 1, -1, 300, 2**63 - 1, -(2**63)]),
        "c/empty": example_proto.float_feature([]),
        "é/utf8": example_proto.int64_feature([7]),
    }
    reference = tf.train.Example(features=tf.train.Features(feature={k: tf_feature(f) for k, f in features.items()}))
    ours = example_proto.encode_example(features)
    assert ours == reference.SerializeToString(deterministic=True)
    for serialized in (ours, reference.SerializeToString()):
        decoded = example_proto.decode_example(serialized)
        assert decoded.keys() == features.keys()
        for key, feature in features.items():
            assert decoded[key].kind == feature.kind
            if feature.kind == "bytes":
                assert [bytes(v) for v in decoded[key].values] == list(feature.values)
            else:
                assert decoded[key].values.dtype == feature.values.dtype
                np.testing.assert_array_equal(decoded[key].values, feature.values)


def test_example_decoder_accepts_unpacked_lists_and_merges_like_protobuf():
    # FloatList / Int64List values written one field each (unpacked), a float list split in
    # two messages, an unknown field, and a repeated key: protobuf's own parser is the judge.
    def field(number, wire, payload):
        return bytes([number << 3 | wire]) + (bytes([len(payload)]) if wire == 2 else b"") + payload

    def floats(*values):  # a FloatList with unpacked (fixed32) values, as a Feature
        return field(2, 2, b"".join(field(1, 5, struct.pack("<f", v)) for v in values))

    def int64s(*varints):  # an Int64List with unpacked (varint) values, as a Feature
        return field(3, 2, b"".join(field(1, 0, v) for v in varints))

    entry_a = field(1, 2, b"a") + field(2, 2, floats(1.0, 2.5)) + field(2, 2, floats(4.0))
    entry_b = field(1, 2, b"b") + field(2, 2, int64s(b"\x05", b"\x7f"))
    entry_b2 = field(1, 2, b"b") + field(2, 2, int64s(b"\x09"))
    unknown = field(9, 0, b"\x01")
    serialized = field(1, 2, field(1, 2, entry_a) + field(1, 2, entry_b) + unknown) + field(1, 2, field(1, 2, entry_b2))
    reference = tf.train.Example.FromString(serialized).features.feature
    decoded = example_proto.decode_example(serialized)
    assert list(decoded["a"].values) == list(reference["a"].float_list.value) == [1.0, 2.5, 4.0]
    assert list(decoded["b"].values) == list(reference["b"].int64_list.value) == [9]


@pytest.mark.parametrize("damage, match", [
    (lambda b: b[:-3], "not a tf.train.Example"),
    (lambda b: b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" + b, "not a tf.train.Example"),
    (lambda b: b"\x0f" + b, "not a tf.train.Example"),
])
def test_malformed_example_is_a_data_error(damage, match):
    record = bair.sequence_to_record(random_sequence(np.random.default_rng(3)))
    with pytest.raises(DataError, match=rf"f.tfrecords: record 2: {match}"):
        bair.example_to_sequence(damage(record), where="f.tfrecords: record 2")


def test_tf_free_writer_is_read_by_tensorflows_parser(tmp_path):
    rng = np.random.default_rng(4)
    seqs = [random_sequence(rng) for _ in range(3)]
    path = bair.write_sequences(tmp_path / bair.file_name(0, 2), seqs)
    spec = {}
    for t in range(30):
        for cam in bair.CAMERAS:
            spec[bair.image_key(t, cam)] = tf.io.FixedLenFeature([], tf.string)
        spec[bair.action_key(t)] = tf.io.FixedLenFeature([4], tf.float32)
        spec[bair.endeffector_key(t)] = tf.io.FixedLenFeature([3], tf.float32)
    parsed = next(iter(tf.data.TFRecordDataset(str(path)).batch(8).map(lambda s: tf.io.parse_example(s, spec))))
    for i, seq in enumerate(seqs):
        for cam in bair.CAMERAS:
            frames = np.stack([np.frombuffer(parsed[bair.image_key(t, cam)][i].numpy(), np.uint8) for t in range(30)])
            np.testing.assert_array_equal(frames.reshape(30, 64, 64, 3), seq[cam])
        np.testing.assert_array_equal(np.stack([parsed[bair.action_key(t)][i] for t in range(30)]), seq["action"])
        np.testing.assert_array_equal(
            np.stack([parsed[bair.endeffector_key(t)][i] for t in range(30)]), seq["endeffector_pos"])


def corrupt_copy(src, dst, position, value=None):
    data = bytearray(src.read_bytes())
    data[position] = value if value is not None else data[position] ^ 0xFF
    dst.write_bytes(bytes(data))
    return dst


def test_corrupt_framing_names_file_and_record(tmp_path):
    rng = np.random.default_rng(5)
    path = bair.write_sequences(tmp_path / bair.file_name(0, 2), [random_sequence(rng) for _ in range(3)])
    size = tfrecord.HEADER_BYTES + int(tfrecord.index_records(path).lengths[0]) + tfrecord.FOOTER_BYTES
    corrupt = "corrupt or truncated TFRecord"
    cases = {
        "length": (corrupt_copy(path, tmp_path / "length.tfrecords", size + 2), f"record 1: {corrupt} (length CRC"),
        "data": (corrupt_copy(path, tmp_path / "data.tfrecords", 2 * size + 500), f"record 2: {corrupt} (data CRC"),
        "footer": (corrupt_copy(path, tmp_path / "footer.tfrecords", size - 1), f"record 0: {corrupt} (data CRC"),
    }
    for bad, match in cases.values():
        with pytest.raises(DataError, match=rf"^{bad}: {re.escape(match)}"):
            list(bair.read_sequences(bad))
    with pytest.raises(DataError, match=r"record 1: corrupt"):
        bair.scan_record_framing(cases["length"][0])
    index = tfrecord.index_records(cases["data"][0])  # headers intact: indexing succeeds
    with pytest.raises(DataError, match=r"data\.tfrecords: record 2: corrupt or truncated TFRecord \(data CRC"):
        tfrecord.read_record(index, 2)
    (tmp_path / "short.tfrecords").write_bytes(path.read_bytes()[: 2 * size + 5])
    with pytest.raises(DataError, match=r"short\.tfrecords: record 2: truncated TFRecord \(incomplete header\)"):
        list(bair.read_sequences(tmp_path / "short.tfrecords"))
