"""`tf.train.Example` encoding and decoding without TensorFlow or generated protobuf code.

The messages, from tensorflow/core/example/{example,feature}.proto:

    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }   // entries: { key = 1; value = 2; }
    Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                             Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }
    Int64List { repeated int64 value = 1 [packed = true]; }

The encoder writes map entries sorted by key with packed lists, which is what protobuf's
deterministic serialisation writes. The decoder follows protobuf's parsing rules: it also
accepts unpacked lists, skips unknown fields, merges repeated occurrences of a message,
and lets a later map entry for the same key win.
"""

from dataclasses import dataclass
from typing import Mapping, Optional, Union

import numpy as np

BYTES, FLOAT, INT64 = "bytes", "float", "int64"
_KIND_FIELDS = {BYTES: 1, FLOAT: 2, INT64: 3}
_FIELD_KINDS = {number: kind for kind, number in _KIND_FIELDS.items()}
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5


class ProtoDecodeError(ValueError):
    """The bytes are not a well-formed `tf.train.Example`."""


@dataclass(frozen=True)
class Feature:
    """One feature: its kind and values.

    Attributes:
        kind: "bytes", "float", "int64", or None for a Feature with no list set.
        values: A tuple of bytes-like values (bytes), float32 [n] (float) or int64 [n].
    """

    kind: Optional[str]
    values: Union[tuple, np.ndarray] = ()


def bytes_feature(values) -> Feature:
    """A BytesList feature of the given byte strings."""
    return Feature(BYTES, tuple(values))


def float_feature(values) -> Feature:
    """A FloatList feature (values converted to float32)."""
    return Feature(FLOAT, np.asarray(values, np.float32).reshape(-1))


def int64_feature(values) -> Feature:
    """An Int64List feature."""
    return Feature(INT64, np.asarray(values, np.int64).reshape(-1))


# ---- encoding ------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 values are written as 10-byte two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(field: int, payload) -> bytes:
    return b"".join((_varint(field << 3 | _LEN), _varint(len(payload)), payload))


def _encode_feature(feature: Feature) -> bytes:
    if feature.kind is None:
        return b""
    if feature.kind == BYTES:
        inner = b"".join(_length_delimited(1, bytes(v)) for v in feature.values)
    elif feature.kind == FLOAT:
        packed = np.asarray(feature.values, "<f4").tobytes()
        inner = _length_delimited(1, packed) if packed else b""
    elif feature.kind == INT64:
        packed = b"".join(_varint(int(v)) for v in feature.values)
        inner = _length_delimited(1, packed) if packed else b""
    else:
        raise ValueError(f"unknown feature kind {feature.kind!r}")
    return _length_delimited(_KIND_FIELDS[feature.kind], inner)


def encode_example(features: Mapping[str, Feature]) -> bytes:
    """Serialises {key: Feature} as a `tf.train.Example` (keys sorted)."""
    entries = b"".join(
        _length_delimited(
            1, _length_delimited(1, key.encode("utf-8")) + _length_delimited(2, _encode_feature(features[key]))
        )
        for key in sorted(features)
    )
    return _length_delimited(1, entries)


# ---- decoding ------------------------------------------------------------------------------


def _read_varint(buf, pos: int, end: int):
    result, shift = 0, 0
    while True:
        if pos >= end:
            raise ProtoDecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtoDecodeError("varint longer than 10 bytes")


def _fields(buf, pos: int, end: int) -> list:
    """[(field number, wire type, value)] of one message in buf[pos:end].

    value is an int for varints and (start, stop) positions for the other wire types.
    """
    fields = []
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:  # one-byte tags and lengths are the common case: skip the call
            pos += 1
        else:
            tag, pos = _read_varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ProtoDecodeError("field number 0")
        if wire == _LEN:
            if pos >= end:
                raise ProtoDecodeError("truncated length")
            size = buf[pos]
            if size < 0x80:
                pos += 1
            else:
                size, pos = _read_varint(buf, pos, end)
            value = (pos, pos + size)
            pos += size
        elif wire == _VARINT:
            value, pos = _read_varint(buf, pos, end)
        elif wire == _FIXED32 or wire == _FIXED64:
            size = 4 if wire == _FIXED32 else 8
            value = (pos, pos + size)
            pos += size
        else:
            raise ProtoDecodeError(f"unsupported wire type {wire}")
        if pos > end:
            raise ProtoDecodeError("field runs past the end of its message")
        fields.append((number, wire, value))
    return fields


def _signed64(value: int) -> int:
    value &= (1 << 64) - 1  # protobuf keeps the low 64 bits of an over-long varint
    return value - (1 << 64) if value >= 1 << 63 else value


def _list_values(buf, kind: str, start: int, stop: int) -> list:
    """The values of one BytesList / FloatList / Int64List message, as a list of chunks."""
    chunks = []
    for number, wire, value in _fields(buf, start, stop):
        if number != 1:
            continue
        if kind == BYTES and wire == _LEN:
            chunks.append(buf[value[0] : value[1]])
        elif kind == FLOAT and wire == _LEN:
            if (value[1] - value[0]) % 4:
                raise ProtoDecodeError("packed floats not a multiple of 4 bytes")
            chunks.append(np.frombuffer(buf[value[0] : value[1]], "<f4"))
        elif kind == FLOAT and wire == _FIXED32:
            chunks.append(np.frombuffer(buf[value[0] : value[1]], "<f4"))
        elif kind == INT64 and wire == _LEN:
            pos, packed, numbers = value[0], value[1], []
            while pos < packed:
                number, pos = _read_varint(buf, pos, packed)
                numbers.append(_signed64(number))
            chunks.append(np.array(numbers, np.int64))
        elif kind == INT64 and wire == _VARINT:
            chunks.append(np.array([_signed64(value)], np.int64))
        else:
            raise ProtoDecodeError(f"{kind} list value with wire type {wire}")
    return chunks


def _finish(kind: Optional[str], chunks: list) -> Feature:
    if kind is None:
        return Feature(None)
    if kind == BYTES:
        return Feature(BYTES, tuple(chunks))
    dtype = np.float32 if kind == FLOAT else np.int64
    if not chunks:
        return Feature(kind, np.zeros(0, dtype))
    values = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    return Feature(kind, values.astype(dtype, copy=False))


def _decode_feature(buf, start: int, stop: int, kind=None, chunks=None) -> tuple:
    """(kind, chunks) of one Feature message, merged into an earlier (kind, chunks)."""
    chunks = [] if chunks is None else chunks
    for number, wire, value in _fields(buf, start, stop):
        if number not in _FIELD_KINDS:
            continue
        if wire != _LEN:
            raise ProtoDecodeError(f"Feature field {number} with wire type {wire}")
        if _FIELD_KINDS[number] != kind:  # oneof: a different case replaces the value
            kind, chunks = _FIELD_KINDS[number], []
        chunks.extend(_list_values(buf, kind, *value))
    return kind, chunks


def _decode_entry(buf, start: int, stop: int) -> tuple:
    """(key, (kind, chunks)) of one map entry."""
    key, kind, chunks = "", None, []
    for number, wire, value in _fields(buf, start, stop):
        if number == 1 and wire == _LEN:
            try:
                key = bytes(buf[value[0] : value[1]]).decode("utf-8")
            except UnicodeDecodeError:
                raise ProtoDecodeError("feature key is not UTF-8") from None
        elif number == 2 and wire == _LEN:
            kind, chunks = _decode_feature(buf, *value, kind, chunks)
    return key, (kind, chunks)


def decode_example(serialized) -> dict:
    """Parses a serialised `tf.train.Example` into {key: Feature}.

    Byte values are zero-copy slices (memoryviews) of `serialized`.

    Args:
        serialized: A bytes-like object.

    Raises:
        ProtoDecodeError: The bytes are not a well-formed Example.
    """
    buf = memoryview(serialized).cast("B")
    entries = {}
    for number, wire, value in _fields(buf, 0, len(buf)):
        if number != 1:
            continue
        if wire != _LEN:
            raise ProtoDecodeError(f"Example field 1 with wire type {wire}")
        for inner_number, inner_wire, inner_value in _fields(buf, *value):
            if inner_number != 1:
                continue
            if inner_wire != _LEN:
                raise ProtoDecodeError(f"Features field 1 with wire type {inner_wire}")
            key, parsed = _decode_entry(buf, *inner_value)
            entries[key] = parsed  # a later entry for a key replaces the earlier one
    return {key: _finish(kind, chunks) for key, (kind, chunks) in entries.items()}
