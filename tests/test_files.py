import hashlib
import os

import pytest

from lenet_mnist.errors import LenetError
from lenet_mnist.files import MARKER, atomic_dir, atomic_path, atomic_set, digest_of, write_bytes


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
    with atomic_dir(out, "stage") as staging:
        for seed in (0, 1, 2):
            (staging / f"{seed}.pt").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_dir(out, "stage") as staging:
            (staging / "0.pt").write_bytes(b"new")
            raise RuntimeError("failed after the first file")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "0.pt", "1.pt", "2.pt"]
    assert (out / "0.pt").read_bytes() == b"old"
    assert [p.name for p in out.parent.iterdir()] == ["run"]
    with atomic_dir(out, "stage") as staging:
        (staging / "0.pt").write_bytes(b"new")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "0.pt"] and (out / "0.pt").read_bytes() == b"new"


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
        with atomic_dir(out, "stage") as staging:
            (staging / "0.pt").write_bytes(b"whole")
    else:
        write_bytes(out, b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "plot.png"]


@pytest.mark.parametrize(
    "existing",
    [
        "another stage's set",
        "a directory the stage did not write",
        "a file",
    ],
)
def test_a_set_never_replaces_what_its_stage_did_not_write(tmp_path, existing):
    """Other results, or a stage's own inputs, at the output path stay as they are: one error
    naming the path, nothing written."""
    out = tmp_path / "results"
    if existing == "another stage's set":
        with atomic_dir(out, "figures") as staging:
            (staging / "a.png").write_bytes(b"theirs")
    elif existing == "a directory the stage did not write":
        (out / "small").mkdir(parents=True)
        (out / "small" / "0.json").write_bytes(b"theirs")
    else:
        out.write_bytes(b"theirs")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(LenetError, match=f"^{out}: exists and was not written by lenet-mnist derivations"):
        with atomic_dir(out, "derivations") as staging:
            (staging / "checks.json").write_bytes(b"mine")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_set_of_fixed_names_replaces_a_directory_of_those_names_only(tmp_path):
    """Where a stage's files are fixed (the raw files), a directory holding some of them is its
    own; one holding anything else is not."""
    out = tmp_path / "raw"
    out.mkdir()
    (out / "a.gz").write_bytes(b"partial")
    with atomic_dir(out, "download", names=["a.gz", "b.gz"]) as staging:
        (staging / "a.gz").write_bytes(b"a")
        (staging / "b.gz").write_bytes(b"b")
    assert sorted(p.name for p in out.iterdir()) == ["a.gz", "b.gz"]  # no marker: the names say it
    (out / "notes.txt").write_bytes(b"mine")
    with pytest.raises(LenetError, match="not written by lenet-mnist download"):
        with atomic_dir(out, "download", names=["a.gz", "b.gz"]):
            pass
    assert (out / "notes.txt").read_bytes() == b"mine"


def test_files_written_as_a_set_replace_the_old_ones_only_when_all_are_written(tmp_path):
    paths = [tmp_path / "model.pt", tmp_path / "history.csv"]
    for path in paths:
        path.write_bytes(b"old")
    with pytest.raises(OSError):
        with atomic_set(*paths) as (model, history):
            model.write_bytes(b"new")
            raise OSError(28, "No space left on device")
    assert [p.read_bytes() for p in paths] == [b"old", b"old"]
    with atomic_set(*paths) as (model, history):
        model.write_bytes(b"new model")
        history.write_bytes(b"new history")
    assert [p.read_bytes() for p in paths] == [b"new model", b"new history"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv", "model.pt"]  # no temporaries
