import torch
from torch import nn

from lenet_mnist.model import build_model


def test_lenet_maps_a_batch_of_digits_to_ten_logits():
    model = build_model("lenet")
    out = model(torch.rand(5, 1, 28, 28))
    assert out.shape == (5, 10)
    # Logits, not probabilities: the seed's final Softmax is gone.
    assert not any(isinstance(m, nn.Softmax) for m in model.modules())
    assert not torch.allclose(out.sum(dim=1), torch.ones(5))


def test_lenet_has_the_seeds_layers():
    model = build_model("lenet")
    assert sum(p.numel() for p in model.parameters()) == 61_706  # LeNet-5 with 6/16 maps, 120/84 units
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "Sigmoid", "AvgPool2d", "Conv2d", "Sigmoid", "AvgPool2d", "Flatten",
                     "Linear", "Sigmoid", "Linear", "Linear"]
