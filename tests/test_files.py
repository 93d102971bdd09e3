import hashlib
import os

import pytest

from lenet_mnist.files import atomic_dir, atomic_path, digest_of, write_bytes


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


def test_a_set_of_files_is_complete_or_absent(tmp_path):
    """A failure while a set is written keeps the old set whole and leaves no staging directory; a
    success replaces the old set, files it no longer holds included."""
    out = tmp_path / "models" / "run"
    with atomic_dir(out) as staging:
        for seed in (0, 1, 2):
            (staging / f"{seed}.pt").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as staging:
            (staging / "0.pt").write_bytes(b"new")
            raise RuntimeError("failed after the first file")
    assert sorted(p.name for p in out.iterdir()) == ["0.pt", "1.pt", "2.pt"] and (out / "0.pt").read_bytes() == b"old"
    assert [p.name for p in out.parent.iterdir()] == ["run"]
    with atomic_dir(out) as staging:
        (staging / "0.pt").write_bytes(b"new")
    assert [p.name for p in out.iterdir()] == ["0.pt"] and (out / "0.pt").read_bytes() == b"new"


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_temporaries_of_a_killed_writer_go_when_the_output_is_written_again(tmp_path, kind):
    """A SIGKILL leaves `.<name>.<random>.tmp` behind; the next writer of that output removes it
    (and only its own: another output's temporaries stay)."""
    out = tmp_path / "plot.png"
    stale = tmp_path / ".plot.png.k1ll3d_x.tmp"
    other = tmp_path / ".plot.png.old.png.abcdefgh.tmp"  # another output's, whose name starts alike
    for leftover in (stale, other):
        leftover.mkdir() if kind == "directory" else leftover.write_bytes(b"")
    if kind == "directory":
        (stale / "0.pt").write_bytes(b"partial")
        with atomic_dir(out) as staging:
            (staging / "0.pt").write_bytes(b"whole")
    else:
        write_bytes(out, b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "plot.png"]
