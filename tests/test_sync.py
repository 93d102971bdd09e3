import os

import pytest

from lenet_mnist.errors import LenetError
from lenet_mnist.sync import built_stages, file_times, run_tool


def test_a_stage_is_locked_only_when_the_run_built_all_its_outputs():
    stages = {
        "split": ["data/split/train.npy", "data/split/val.npy"],
        "train@a-0": ["models/a/0.pt"],
        "figures": ["results/figures"],
        "nothing": [],
    }
    built = ["data/split/train.npy", "data/split/val.npy", "./models/a/0.pt", "results/figures/"]
    assert built_stages(stages, built) == ["split", "train@a-0", "figures"]
    assert built_stages(stages, ["data/split/train.npy"]) == []


def test_file_times_reach_into_directories(tmp_path):
    (tmp_path / "dir/sub").mkdir(parents=True)
    for name in ("dir/a", "dir/sub/b", "c"):
        (tmp_path / name).write_text(name)
        os.utime(tmp_path / name, ns=(1, 7))
    assert file_times([tmp_path / "dir", tmp_path / "c"]) == {
        tmp_path / "dir/a": 7,
        tmp_path / "dir/sub/b": 7,
        tmp_path / "c": 7,
    }


def test_a_failed_tool_is_named_with_its_own_error_line(tmp_path):
    with pytest.raises(LenetError, match=r"^dvc commit: ERROR: you are not inside of a DVC repository"):
        run_tool("dvc", "commit", "--force", cwd=tmp_path)
