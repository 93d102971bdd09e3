import math

import pytest
import torch
from tolerances import gamma, two_sums

from lenet_mnist.evaluate import metrics_of
from lenet_mnist.model import predict

pytestmark = pytest.mark.numerics


def test_metrics_of_a_hand_made_case():
    labels = torch.tensor([0, 0, 1, 2])
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0], [0, 0, 5.0]])  # one mistake: 0 -> 1
    logits = torch.nn.functional.pad(logits, (0, 7), value=-1e4)
    m = metrics_of(logits, labels)
    assert m["test_accuracy"] == 0.75 and m["n_test"] == 4
    right = -math.log(math.exp(5) / (math.exp(5) + 2))
    wrong = -math.log(1 / (math.exp(5) + 2))
    # Each loss, log(sum_j exp(z_j - max)) + max - z_y over 10 logits of magnitude <= 5, is a sum of
    # 10 terms in float32 then 3 more operations on numbers below 5 + log 10; the mean adds 4 more.
    per_sample = 2 * gamma(13, torch.float32) * (5 + math.log(10))
    assert abs(m["test_loss"] - (3 * right + wrong) / 4) <= per_sample + two_sums(4, (3 * right + wrong) / 4)
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
    # The logits are dot products of length 4 plus a bias, perhaps by another kernel per batch size:
    # within 2 gamma(5) sum |w x| + |b| of each other; a loss moves at most twice its logits' largest
    # change, and the two means of 7 losses add two_sums(7).
    layer = model[1]
    magnitude = (images.flatten(1).abs() @ layer.weight.abs().T + layer.bias.abs()).max().item()
    bound = 2 * (2 * gamma(5, torch.float32) * magnitude) + two_sums(7, 7 * whole["test_loss"])
    assert abs(whole["test_loss"] - batched["test_loss"]) <= bound
