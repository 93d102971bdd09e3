"""Writing outputs so that no stage leaves a partial file under its final name."""

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from lenet_mnist.errors import LenetError


def _file_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()  # mkstemp makes 0600 files; outputs get the usual mode
DIR_MODE = FILE_MODE | 0o111


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _temporary_beside(path, make):
    """A new temporary file or directory beside `path`, named `.<name>.<8 random characters>.tmp`
    (.gitignore and .dvcignore leave that out). Those of an earlier writer of `path`, killed before
    it could remove them, are removed first: one job at a time writes an output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.{'[a-z0-9_]' * 8}.tmp"):
        _remove(stale)
    return Path(make(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))


def _new_file(**names):
    fd, name = tempfile.mkstemp(**names)
    os.close(fd)
    return name


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    try:
        with _temporary_file(path) as tmp:
            yield tmp
            os.replace(tmp, path)
    except OSError as e:
        if e.filename is not None:
            raise
        raise OSError(e.errno, e.strerror, str(path)) from None  # a failed write() names no file


@contextlib.contextmanager
def atomic_set(*paths):
    """Yield a temporary path beside each of `paths`, to write a stage's files into; only once all
    are written do they replace `paths`, the old files removed first: a failure leaves the old set,
    a kill among the renames leaves some files missing (which both tools rebuild), never an old
    file beside a new one."""
    with contextlib.ExitStack() as stack:
        paths = [Path(p) for p in paths]
        temporaries = [stack.enter_context(_temporary_file(p)) for p in paths]
        yield temporaries
        for path in paths:
            path.unlink(missing_ok=True)
        for tmp, path in zip(temporaries, paths):
            os.replace(tmp, path)


@contextlib.contextmanager
def _temporary_file(path):
    tmp = _temporary_beside(path, _new_file)
    os.chmod(tmp, FILE_MODE)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


MARKER = ".written-by"  # in a directory output: the stage that wrote it, and may replace it


def _check_replaceable(path, stage, names):
    """Refuse to replace what `stage` did not write: an existing `path` must be a directory holding
    `names` only (where the stage's files are fixed), else one whose MARKER names the stage."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink():
        found = {entry.name for entry in path.iterdir()}
        marker = path / MARKER
        if found <= set(names or ()) or (
            names is None and marker.is_file() and marker.read_text().strip() == f"lenet-mnist {stage}"
        ):
            return
    raise LenetError(
        f"{path}: exists and was not written by lenet-mnist {stage}, so it is not replaced; "
        "remove it, or give the stage another output path"
    )


@contextlib.contextmanager
def atomic_dir(path, stage, names=None):
    """Yield an empty directory beside `path` to write a set of files into; it replaces `path` whole
    only if the block succeeds, and is removed on any failure: the set is complete or absent. It
    replaces only an earlier output of the same stage: a directory of `names`, where the stage's
    files are fixed, else one that holds the MARKER written with the set."""
    path = Path(path)
    _check_replaceable(path, stage, names)
    staging = _temporary_beside(path, tempfile.mkdtemp)
    os.chmod(staging, DIR_MODE)
    try:
        if names is None:
            (staging / MARKER).write_text(f"lenet-mnist {stage}\n")
        yield staging
        if path.exists() or path.is_symlink():
            _remove(path)
        staging.rename(path)
    except OSError as e:  # named by the output, not by the staging directory
        if e.filename is None or not str(e.filename).startswith(str(staging)):
            raise
        raise OSError(e.errno, e.strerror, str(path) + str(e.filename)[len(str(staging)) :]) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def write_bytes(path, data):
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path, obj):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def digest_of(path, algorithm="md5"):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()
