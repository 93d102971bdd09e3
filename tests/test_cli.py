import shutil

import pytest

from conftest import SMOKE_PARAMS
from lenet_mnist.cli import main


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    shutil.copy(SMOKE_PARAMS, tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_error(capsys, args):
    """Run the command; it must exit 1 with exactly one error line, which is returned."""
    assert main(args) == 1
    [line] = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    return line


def test_an_unknown_run_is_one_line_and_a_non_zero_exit(workdir, raw_dir, capsys):
    args = ["prepare", "--run", "nope", "--raw", str(raw_dir), "--train-split", "a.npy", "--subset", "c.npy",
            "--trainset", "out/t.npz", "--recipe", "out/r.json", "--preview", "out/p.png"]
    line = one_error(capsys, args)
    assert line.endswith("prepare: error: --run nope: not a run of params.yaml (allowed: small, larger)")
    assert not (workdir / "out").exists()


def test_training_without_a_recipe_is_one_line_and_writes_nothing(workdir, raw_dir, capsys):
    args = ["train", "--recipe", "r.json", "--trainset", "t.npz", "--raw", str(raw_dir),
            "--val-split", "v.npy", "--checkpoints", "out/models", "--histories", "out/history"]
    line = one_error(capsys, args)
    assert "train: error: r.json: not a run recipe written by lenet-mnist prepare" in line
    assert not (workdir / "out").exists() and not (workdir / "out/models.resume").exists()


def test_bad_params_stop_a_stage_before_it_writes(workdir, raw_dir, capsys):
    (workdir / "params.yaml").write_text(SMOKE_PARAMS.read_text().replace("val_size: 10000", "val_size: -1"))
    line = one_error(capsys, ["split", "--raw", str(raw_dir), "--train", "t.npy", "--val", "v.npy",
                              "--log", "s.log"])
    assert "params.yaml: split.val_size: -1 is less than the minimum of 1" in line
    assert not (workdir / "t.npy").exists() and not (workdir / "v.npy").exists()
    assert "split.val_size" in (workdir / "s.log").read_text()  # the rule's log says why too


def test_a_fraction_not_in_params_is_refused(workdir, raw_dir, capsys):
    line = one_error(capsys, ["subsample", "--fraction", "0.3", "--raw", str(raw_dir), "--train", "t.npy",
                              "--out", "o.npy"])
    assert line.endswith("--fraction 0.3: not in subsample.fractions (allowed: 0.005, 0.01)")


def test_a_truncated_raw_file_is_named(workdir, raw_dir, capsys):
    labels = raw_dir / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-10])
    line = one_error(capsys, ["split", "--raw", str(raw_dir), "--train", "t.npy", "--val", "v.npy"])
    assert f"{labels}: 290 data bytes, but dimensions (300,) need 300" in line
