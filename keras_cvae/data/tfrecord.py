"""TFRecord framing without TensorFlow: write, index, and read with CRC checks.

A TFRecord file is a sequence of records, each framed as

    uint64 length | uint32 masked_crc32c(length bytes) | payload | uint32 masked_crc32c(payload)

(little-endian). TensorFlow's reader checks both CRCs; so does every reader here.
Errors are `DataError`s naming the file and the record index.
"""

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from keras_cvae.data.crc32c import masked_crc32c
from keras_cvae.data.errors import DataError
from keras_cvae.files import atomic_path

HEADER_BYTES = 12  # uint64 length + its uint32 masked CRC
FOOTER_BYTES = 4  # uint32 masked CRC of the payload
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")


@dataclass(frozen=True)
class RecordIndex:
    """Where every record of one TFRecord file lies, for random access.

    Attributes:
        path: The file.
        offsets: int64 [records], byte offset of each record's payload.
        lengths: int64 [records], payload length of each record.
    """

    path: Path
    offsets: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets)


def frame(payload) -> bytes:
    """One record as it lies in the file: header, payload, footer."""
    length = _LENGTH.pack(len(payload))
    return b"".join(
        (length, _CRC.pack(masked_crc32c(length)), payload, _CRC.pack(masked_crc32c(payload)))
    )


def write_framed(path, framed_records: Iterable[bytes]) -> int:
    """Writes already framed records (see `frame`) to `path`, atomically.

    The bytes go to a temporary file next to `path` (see `files.atomic_path`) that
    becomes `path` only once the iterable is exhausted, so an error (raised by the
    iterable, too) never leaves a half-written file.

    Args:
        path: Destination file.
        framed_records: Byte strings made by `frame`.

    Returns:
        The number of records written.
    """
    count = 0
    with atomic_path(path) as temporary, open(temporary, "wb") as f:
        for record in framed_records:
            f.write(record)
            count += 1
    return count


def write_records(path, payloads: Iterable[bytes]) -> int:
    """Frames and writes payloads to `path`, atomically (see `write_framed`).

    Args:
        path: Destination file.
        payloads: The records' contents.

    Returns:
        The number of records written.
    """
    return write_framed(path, (frame(p) for p in payloads))


def _corrupt(path, index, reason) -> DataError:
    return DataError(f"{path}: record {index}: corrupt or truncated TFRecord ({reason})")


def _check_header(path, index, header: bytes, offset: int, size: int) -> int:
    """The payload length from a 12-byte header, after its CRC and the file size check."""
    if len(header) < HEADER_BYTES:
        raise DataError(f"{path}: record {index}: truncated TFRecord (incomplete header)")
    length_bytes = header[:8]
    if _CRC.unpack_from(header, 8)[0] != masked_crc32c(length_bytes):
        raise _corrupt(path, index, "length CRC mismatch")
    (length,) = _LENGTH.unpack(length_bytes)
    end = offset + HEADER_BYTES + length + FOOTER_BYTES
    if end > size:
        raise DataError(
            f"{path}: record {index}: truncated or corrupt TFRecord "
            f"(record of {length} bytes runs past the end of the {size}-byte file)"
        )
    return length


def _file_size(path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        raise DataError(f"{path}: file not found") from None


def index_records(path) -> RecordIndex:
    """Walks the length headers of a TFRecord file (cheap: 12 bytes read per record).

    Checks each length CRC and that every record fits in the file; payload CRCs are
    checked when a record is read.

    Raises:
        DataError: The file is missing, truncated, or a length header is corrupt.
    """
    path = Path(path)
    size = _file_size(path)
    offsets, lengths = [], []
    offset = 0
    with open(path, "rb") as f:
        while offset < size:
            length = _check_header(path, len(offsets), f.read(HEADER_BYTES), offset, size)
            offsets.append(offset + HEADER_BYTES)
            lengths.append(length)
            offset += HEADER_BYTES + length + FOOTER_BYTES
            f.seek(offset)
    return RecordIndex(path, np.asarray(offsets, np.int64), np.asarray(lengths, np.int64))


def _check_payload(path, index, payload, footer: bytes):
    if len(footer) < FOOTER_BYTES or _CRC.unpack(footer)[0] != masked_crc32c(payload):
        raise _corrupt(path, index, "data CRC mismatch")


def read_record(index: RecordIndex, i: int) -> memoryview:
    """Reads record `i` of an indexed file and checks its payload CRC.

    Opens the file for this one read, so it is safe from threads and worker processes.

    Returns:
        The payload (a memoryview over a fresh buffer).

    Raises:
        DataError: The payload CRC does not match (or the file shrank since indexing).
    """
    offset, length = int(index.offsets[i]), int(index.lengths[i])
    with open(index.path, "rb") as f:
        f.seek(offset)
        data = f.read(length + FOOTER_BYTES)
    view = memoryview(data)
    _check_payload(index.path, i, view[:length], view[length:])
    return view[:length]


def iter_records(path) -> Iterator[memoryview]:
    """Yields every payload of a TFRecord file in order, checking both CRCs.

    Raises:
        DataError: The file is missing, truncated or fails a CRC check; the message names
            the file and the index of the first bad record.
    """
    path = Path(path)
    size = _file_size(path)
    offset, index = 0, 0
    with open(path, "rb") as f:
        while offset < size:
            length = _check_header(path, index, f.read(HEADER_BYTES), offset, size)
            view = memoryview(f.read(length + FOOTER_BYTES))
            _check_payload(path, index, view[:length], view[length:])
            yield view[:length]
            offset += HEADER_BYTES + length + FOOTER_BYTES
            index += 1
