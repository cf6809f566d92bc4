"""Where data comes from: detects a dataset's layout, lists its split files and sizes.

Sources (detected from the path):
- "tfrecord": BAIR TFRecords, `root/{train,test}/traj_A_to_B.tfrecords` (root may also be the
  parent of `softmotion30_44k/`). val = the second train file by start index.
- "tfds": a TFDS data_dir holding a prepared `bair_robot_pushing_small` (see tfds_source).
- "lab": the course lab folders `{train,validate,test}/<traj>/<k>/` (val = validate/).
- None or the name of an embedded dataset ("pushing", the default, or "bouncing"):
  generated once into the cache, BAIR layout. A name is a name even where a folder of that
  name exists; write `./bouncing` for the folder.
"""

from dataclasses import dataclass
from pathlib import Path

from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data import lab_layout, tfds_source
from keras_cvae.data.embedded import embedded_datasets, ensure_embedded_dataset
from keras_cvae.data.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Source:
    """A resolved data source: its kind ("tfrecord", "lab", "tfds") and root directory."""

    kind: str
    root: Path


def resolve_source(source) -> Source:
    """Detects the kind of `source` (see the module docstring).

    Args:
        source: A dataset directory, a `Source`, the name of an embedded dataset, or None
            for the default one.

    Raises:
        DataError: The path is missing, empty or not in a known layout.
    """
    if source is None:
        return Source("tfrecord", ensure_embedded_dataset())
    if isinstance(source, str) and source in embedded_datasets():
        return Source("tfrecord", ensure_embedded_dataset(name=source))
    if isinstance(source, Source):
        return source
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{path}: directory not found")
    if not path.is_dir():
        raise DataError(f"{path}: not a directory")
    if not any(path.iterdir()):
        raise DataError(f"{path}: directory is empty")
    for root in (path, path / bair.ROOT_NAME):
        for split in bair.SPLIT_DIRS:
            d = root / split
            if d.is_dir() and any(p.name.endswith(bair.FILE_SUFFIX) for p in d.iterdir()):
                return Source("tfrecord", root)
    data_dir = tfds_source.find_data_dir(path)
    if data_dir is not None:
        return Source("tfds", data_dir)
    if lab_layout.is_lab_root(path):
        return Source("lab", path)
    raise DataError(
        f"{path}: not a known dataset layout (expected {{train,test}}/traj_A_to_B.tfrecords, "
        f"a TFDS data_dir with {tfds_source.TFDS_NAME}/, or lab folders "
        "{train,validate,test}/<traj>/<k>/*.png)"
    )


def check_split(split):
    """Raises a DataError unless `split` is one of `SPLITS`.

    Args:
        split: The split name to check.
    """
    if split not in SPLITS:
        raise DataError(f"split must be one of {SPLITS}, got {split!r}")


def bair_split_files(root, split: str) -> list:
    """The TFRecord files of `split` in a BAIR root, sorted by start index.

    val is the second train file by start index; train is every other train file.

    Args:
        root: A BAIR root (holding `train/` and `test/`).
        split: "train", "val" or "test".

    Raises:
        DataError: The split directory is missing/empty, or val is asked of a train
            directory with fewer than two files.
    """
    check_split(split)
    root = Path(root)
    if split == "test":
        return bair.list_tfrecord_files(root / "test")
    files = bair.list_tfrecord_files(root / "train")
    if split == "val":
        if len(files) < 2:
            raise DataError(
                f"{root / 'train'}: the val split is the second train file, but there is only {len(files)}"
            )
        return [files[1]]
    return files[:1] + files[2:]


def lab_split_sequences(root, split: str) -> list:
    """The sequence folders of `split` in a lab root, in natural order.

    Args:
        root: A lab root (holding `train/`, `validate/`, `test/`).
        split: "train", "val" or "test".

    Raises:
        DataError: The split directory is missing or holds no sequence folder.
    """
    return lab_layout.list_sequences(Path(root) / lab_layout.SPLIT_DIRS[split])


def split_sizes(source) -> dict:
    """{split: number of sequences} for every split the source has.

    Args:
        source: As for `resolve_source`.
    """
    src = resolve_source(source)
    sizes = {}
    for split in SPLITS:
        try:
            if src.kind == "tfrecord":
                sizes[split] = sum(bair.scan_record_framing(f) for f in bair_split_files(src.root, split))
            elif src.kind == "lab":
                sizes[split] = len(lab_split_sequences(src.root, split))
        except DataError:
            if split == "train":
                raise
    if src.kind == "tfds":
        sizes = tfds_source.split_sizes(src.root)
    return sizes


def describe_source(source) -> dict:
    """{"kind", "path", "splits": {split: sequences}} for metadata and printing.

    Args:
        source: As for `resolve_source`.
    """
    src = resolve_source(source)
    return {"kind": src.kind, "path": str(src.root), "splits": split_sizes(src)}


def locate_fault(source):
    """Re-reads `source` with the NumPy readers and returns the first DataError, or None.

    Used after TensorFlow failed on a record without saying where: the NumPy readers check
    framing, CRCs and content of every record (BAIR) or every PNG and CSV (lab folders).

    Args:
        source: A BAIR or lab-folder dataset directory (or a resolved `Source`).
    """
    try:
        src = resolve_source(source)
        if src.kind == "tfrecord":
            bair.validate_tfrecords(src.root)
        elif src.kind == "lab":
            for split in lab_layout.SPLIT_DIRS.values():
                if (src.root / split).is_dir():
                    for folder in lab_layout.list_sequences(src.root / split):
                        lab_layout.read_sequence(folder)
    except DataError as error:
        return error
    return None
