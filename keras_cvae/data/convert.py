"""Converts datasets between the BAIR TFRecord layout and the lab folder layout."""

from contextlib import contextmanager
from pathlib import Path

from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data import lab_layout
from keras_cvae.data.errors import DataError
from keras_cvae.data.sources import bair_split_files, resolve_source
from keras_cvae.files import staged_directory
from keras_cvae.paths import why_not_creatable


@contextmanager
def _staged(dst: Path):
    """`staged_directory(dst)` for a destination that must be absent or empty.

    Args:
        dst: The dataset folder to create.

    Raises:
        DataError: `dst` exists and is not an empty folder, or cannot be created.
    """
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DataError(f"{dst}: destination exists and is not empty")
    reason = why_not_creatable(dst.parent)
    if reason is not None:
        raise DataError(f"{dst}: cannot create the destination ({reason})")
    # replace=True only ever replaces the empty folder checked above.
    with staged_directory(dst, replace=True) as staged:
        yield staged


def tfrecord_to_lab(src, dst, *, progress: bool = False) -> Path:
    """Converts a BAIR TFRecord dataset to the lab folder layout (model camera only).

    train files go to `train/<file stem>/<k>/`, the val file (the second train file by
    start index) to `validate/<file stem>/<k>/`, test files to `test/<file stem>/<k>/`.
    Written into a temporary sibling of `dst` and renamed when complete.

    Args:
        src: A BAIR TFRecord dataset root.
        dst: The lab folder root to create (absent or empty).
        progress: Print one line per converted file.

    Returns:
        `dst` as a Path.

    Raises:
        DataError: Bad source (named file and record), or `dst` exists and is not empty.
    """
    source = resolve_source(src)
    if source.kind != "tfrecord":
        raise DataError(f"{src}: not a BAIR TFRecord dataset (found a {source.kind} source)")
    dst = Path(dst)
    jobs = []
    for split, lab_split in lab_layout.SPLIT_DIRS.items():
        try:
            files = bair_split_files(source.root, split)
        except DataError:
            if split == "train":
                raise
            continue
        jobs += [(lab_split, f) for f in files]
    with _staged(dst) as tmp:
        for lab_split, path in jobs:
            for k, sequence in enumerate(bair.read_sequences(path)):
                lab_layout.write_sequence(tmp / lab_split / path.name[: -len(bair.FILE_SUFFIX)] / str(k), sequence)
            if progress:
                print(f"converted {path}")
    return dst


def lab_to_tfrecord(src, dst, *, progress: bool = False) -> Path:
    """Converts lab folders to the BAIR TFRecord layout, one file per <traj> folder.

    If the <traj> folders of train/ and validate/ are named `traj_A_to_B`, their names are
    kept (so TFRecord -> lab -> TFRecord gives the same files). Otherwise train and validate
    folders are numbered in order with the first validate folder placed second, so it is the
    val split again. The lab layout has one camera: `image_main` is written as a copy of
    `image_aux1`. Written into a temporary sibling of `dst` and renamed when complete.

    Args:
        src: A lab folder root.
        dst: The TFRecord root to create (absent or empty).
        progress: Print one line per written file.

    Returns:
        `dst` as a Path.

    Raises:
        DataError: Bad source file (named), or `dst` exists and is not empty.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise DataError(f"{src}: directory not found")
    if not lab_layout.is_lab_root(src):
        raise DataError(f"{src}: not a lab folder dataset ({{train,validate,test}}/<traj>/<k>/*.png)")

    def trajs(name):
        d = src / name
        return lab_layout.list_trajectories(d) if d.is_dir() else []

    train, validate, test = trajs("train"), trajs("validate"), trajs("test")
    plan = []  # (split, traj dir, sequence dirs)
    for split, group in (("train", None), ("test", test)):
        members = [("train", t) for t in train] + [("validate", t) for t in validate] if group is None else [("test", t) for t in group]
        if not members:
            continue
        named = all(bair.file_range(t.name + bair.FILE_SUFFIX) for _, t in members)
        if not named and group is None:
            members = [m for m in members if m[0] == "train"][:1] + [m for m in members if m[0] == "validate"] + [m for m in members if m[0] == "train"][1:]
        start = 0
        for _, t in members:
            seqs = sorted((p for p in t.iterdir() if p.is_dir()), key=lab_layout.natural_key)
            if not seqs:
                raise DataError(f"{t}: no sequence folders")
            name = t.name + bair.FILE_SUFFIX if named else bair.file_name(start, start + len(seqs) - 1)
            plan.append((split, name, seqs))
            start += len(seqs)
    with _staged(dst) as tmp:
        for split, name, seqs in plan:

            def sequences():
                for seq_dir in seqs:
                    seq = lab_layout.read_sequence(seq_dir)
                    seq["image_main"] = seq["image_aux1"]
                    yield seq

            bair.write_sequences(tmp / split / name, sequences())
            if progress:
                print(f"wrote {split}/{name} ({len(seqs)} sequences)")
    return dst


def convert_dataset(src, dst, *, to: str, progress: bool = False) -> Path:
    """Converts between layouts: to="lab" (from TFRecords) or to="tfrecord" (from lab folders).

    Args:
        src: The source dataset root.
        dst: The destination root to create (absent or empty).
        to: "lab" or "tfrecord".
        progress: Print one line per file.

    Returns:
        `dst` as a Path.

    Raises:
        DataError: Unknown `to`, or what the conversion raises.
    """
    if to == "lab":
        return tfrecord_to_lab(src, dst, progress=progress)
    if to == "tfrecord":
        return lab_to_tfrecord(src, dst, progress=progress)
    raise DataError(f"unknown target layout {to!r}; use 'lab' or 'tfrecord'")
