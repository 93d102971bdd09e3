import pandas as pd

from lenet_mnist.plot import long_history


def test_long_history_keeps_each_value_with_its_run_epoch_and_split():
    history = pd.DataFrame({"epoch": [1, 2, 1], "train_loss": [1.0, 0.5, 2.0], "train_accuracy": [0.1, 0.2, 0.3],
                            "val_loss": [1.1, 0.6, 2.1], "val_accuracy": [0.4, 0.5, 0.6], "run": ["a", "a", "b"]})
    long = long_history(history, ids=("epoch", "run"))
    assert len(long) == 12
    row = long[(long.run == "b") & (long.split == "validation") & (long.metric == "accuracy")]
    assert row.value.tolist() == [0.6] and row.epoch.tolist() == [1]
    row = long[(long.run == "a") & (long.epoch == 2) & (long.split == "train") & (long.metric == "loss")]
    assert row.value.tolist() == [0.5]
