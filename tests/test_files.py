import hashlib
import os

import pytest

from lenet_mnist.files import atomic_path, digest_of, write_bytes


def test_digest_of_matches_hashlib(tmp_path):
    path = tmp_path / "f"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    assert digest_of(path) == hashlib.md5(data).hexdigest()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    write_bytes(path, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("killed mid-write")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_new_file_gets_the_usual_mode(tmp_path):
    path = tmp_path / "sub" / "new.bin"
    write_bytes(path, b"x")
    assert path.read_bytes() == b"x"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it, not mkstemp's 0600
