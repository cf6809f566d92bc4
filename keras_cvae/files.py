"""Writing files and folders so that no reader ever sees half of one.

Everything is written under a temporary name beside its target, then renamed onto it in
one step. Temporary names start with a dot (a run folder's cleanup and every reader's
pattern pass them over) and keep the target's suffixes (Keras and imageio choose the
format from them). One mode policy: files 0644, folders 0755, whatever the umask or
`mkstemp` would give.
"""

import contextlib
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Iterator

FILE_MODE = 0o644
DIR_MODE = 0o755


def temporary_sibling(path) -> Path:
    """A hidden, unused name beside `path` with the same suffixes.

    Args:
        path: The target file or folder.
    """
    path = Path(path)
    suffixes = "".join(path.suffixes) if path.suffix else ""
    stem = path.name[: len(path.name) - len(suffixes)] if suffixes else path.name
    return path.with_name(f".{stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffixes}")


def _staging_prefix(path: Path) -> str:
    return temporary_sibling(path).name.split(".tmp-")[0] + ".tmp-"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_staging(path) -> list:
    """Removes what killed writers of `path` left beside it: hidden `temporary_sibling`
    files and folders whose process no longer runs.

    Args:
        path: The target file or folder.

    Returns:
        The removed paths.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    prefix, removed = _staging_prefix(path), []
    for sibling in sorted(path.parent.glob(prefix + "*")):
        try:
            pid = int(sibling.name[len(prefix):].split("-")[0])
        except ValueError:
            continue
        if pid == os.getpid() or _process_alive(pid):
            continue
        if sibling.is_dir() and not sibling.is_symlink():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)
        removed.append(sibling)
    return removed


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yields a temporary path to write; on success it becomes `path`, else it is removed.

    Args:
        path: The file to (re)place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(path)
    try:
        yield temporary
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_save(path, save):
    """Calls `save(temporary_path)` and renames what it wrote onto `path`.

    Args:
        path: Destination file.
        save: Callable writing a file at the path (a str) it is given.
    """
    with atomic_path(path) as temporary:
        save(str(temporary))


def atomic_write_bytes(path, data: bytes):
    """Writes `data` to `path` atomically.

    Args:
        path: Destination file.
        data: Content.
    """
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(path, text: str):
    """Writes `text` (UTF-8) to `path` atomically.

    Args:
        path: Destination file.
        text: Content.
    """
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def staged_directory(path, replace: bool = False) -> Iterator[Path]:
    """Yields an empty temporary folder to fill; on success it becomes `path`.

    On failure (an exception, Ctrl-C) the temporary folder is removed and `path` is
    untouched. What a killed build of `path` left beside it is removed first, with a note
    on stderr.

    Args:
        path: The folder to create.
        replace: Replace an existing `path` (removed only once the new one is complete).

    Raises:
        FileExistsError: `replace` is False and `path` exists, or appeared meanwhile (another
            process staged it first; theirs is kept).
    """
    path = Path(path)
    if path.exists() and not replace:
        raise FileExistsError(f"{path}: already exists")
    stale = remove_stale_staging(path)
    if stale:
        print(f"note: removed {len(stale)} unfinished build(s) that a killed process left beside {path}: "
              + ", ".join(p.name for p in stale), file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(path)
    temporary.mkdir(mode=DIR_MODE)
    try:
        yield temporary
        _apply_modes(temporary)
        if replace and path.exists():
            old = temporary_sibling(path)
            os.replace(path, old)
            os.replace(temporary, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            _rename_new(temporary, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _rename_new(folder: Path, path: Path):
    # rename() fails on a folder with content, so a `path` that another process staged
    # meanwhile is never replaced (an empty folder may be: nothing of it is lost).
    try:
        os.rename(folder, path)
    except OSError as error:
        if path.exists():
            raise FileExistsError(f"{path}: already exists") from error
        raise


def _apply_modes(folder: Path):
    os.chmod(folder, DIR_MODE)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), DIR_MODE)
        for name in files:
            os.chmod(os.path.join(root, name), FILE_MODE)


def _try_lock(stream) -> bool:
    """Takes a non-blocking exclusive lock on an open file; False if another holds it.

    The operating system drops the lock when the process ends, `kill -9` included.

    Args:
        stream: A file object opened for writing.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(stream.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def claim_lock(stream):
    """Locks an open lock file for this process and writes its pid in it.

    The operating system drops the lock when the process ends, `kill -9` included.

    Args:
        stream: The lock file, opened with mode "a+".

    Returns:
        None once locked; the holder's pid as it wrote it if another process holds the lock.
    """
    if not _try_lock(stream):
        stream.seek(0)
        return stream.read().strip() or "unknown"
    stream.seek(0)
    stream.truncate()
    stream.write(str(os.getpid()))
    stream.flush()
    return None
