import numpy as np
import torch
from conftest import write_raw

from lenet_mnist.cli import main
from lenet_mnist.data import load_indices


def test_split_stage_gives_exactly_the_notebooks_random_split(tmp_path, monkeypatch):
    raw = write_raw(tmp_path / "raw", n_train=60_000, n_test=10)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((__import__("conftest").ROOT / "params.yaml").read_text())
    assert main(["split", "--raw", str(raw), "--train", "split/train.npy", "--val", "split/val.npy"]) == 0

    # The notebook's own call, on a dataset of the same length.
    train_all = torch.utils.data.TensorDataset(torch.zeros(60_000))
    train_data, val_data = torch.utils.data.random_split(train_all, [50000, 10000], torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(load_indices(tmp_path / "split/train.npy"), train_data.indices)
    np.testing.assert_array_equal(load_indices(tmp_path / "split/val.npy"), val_data.indices)
