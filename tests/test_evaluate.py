import math

import pytest
import torch

from lenet_mnist.evaluate import metrics_of
from lenet_mnist.model import predict


def test_metrics_of_a_hand_made_case():
    labels = torch.tensor([0, 0, 1, 2])
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0], [0, 0, 5.0]])  # one mistake: 0 -> 1
    logits = torch.nn.functional.pad(logits, (0, 7), value=-1e4)
    m = metrics_of(logits, labels)
    assert m["test_accuracy"] == 0.75 and m["n_test"] == 4
    right = -math.log(math.exp(5) / (math.exp(5) + 2))
    wrong = -math.log(1 / (math.exp(5) + 2))
    assert m["test_loss"] == pytest.approx((3 * right + wrong) / 4, rel=1e-5)
    assert m["per_class_accuracy"]["0"] == 0.5 and m["per_class_accuracy"]["1"] == 1.0
    assert m["confusion_matrix"][0][:3] == [1, 1, 0] and m["confusion_matrix"][2][:3] == [0, 0, 1]
    assert sum(map(sum, m["confusion_matrix"])) == 4


def test_accuracy_is_sample_weighted_whatever_the_batch_size():
    """A mean of per-batch accuracies would weight the short last batch too much."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 10))
    images, labels = torch.randn(7, 1, 2, 2), torch.randint(0, 10, (7,))
    whole = metrics_of(predict(model, images, batch_size=7), labels)
    batched = metrics_of(predict(model, images, batch_size=3), labels)
    assert whole["test_accuracy"] == batched["test_accuracy"]
    assert whole["test_loss"] == pytest.approx(batched["test_loss"], rel=1e-6)
