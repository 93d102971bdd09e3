import pytest
import torch
from tolerances import two_sums, unit_roundoff
from torch import nn

from lenet_mnist.model import DepthwiseAvgPool, build_model

pytestmark = pytest.mark.numerics

DEFAULT = {"activation": "sigmoid", "pool": "avg", "batchnorm": "none", "init": "default"}


def kinds(model):
    return [type(m).__name__ for m in model]


def test_lenet_maps_a_batch_of_digits_to_ten_logits():
    model = build_model(DEFAULT)
    out = model(torch.rand(5, 1, 28, 28))
    assert out.shape == (5, 10)
    # Logits, not probabilities: the notebook's final Softmax is gone.
    assert not any(isinstance(m, nn.Softmax) for m in model.modules())
    assert not torch.allclose(out.sum(dim=1), torch.ones(5))


def test_lenet_has_the_notebooks_layers():
    model = build_model(DEFAULT)
    assert sum(p.numel() for p in model.parameters()) == 61_706  # LeNet-5 with 6/16 maps, 120/84 units
    assert kinds(model) == [
        "Conv2d",
        "Sigmoid",
        "DepthwiseAvgPool",
        "Conv2d",
        "Sigmoid",
        "DepthwiseAvgPool",
        "Flatten",
        "Linear",
        "Sigmoid",
        "Linear",
        "Linear",
    ]


def test_batchnorm_after_pooling_is_where_the_notebook_put_it():
    model = build_model({**DEFAULT, "batchnorm": "after_pool"})
    assert kinds(model)[:8] == [
        "Conv2d",
        "Sigmoid",
        "DepthwiseAvgPool",
        "BatchNorm2d",
        "Conv2d",
        "Sigmoid",
        "DepthwiseAvgPool",
        "BatchNorm2d",
    ]


def test_batchnorm_before_the_activation_and_relu_with_max_pooling():
    model = build_model({**DEFAULT, "activation": "relu", "pool": "max", "batchnorm": "before_activation"})
    assert kinds(model) == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "Flatten",
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Linear",
        "Linear",
    ]
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_xavier_initialisation_bounds_the_weights():
    torch.manual_seed(0)
    model = build_model({**DEFAULT, "init": "xavier"})
    conv = model[0]
    fan_in, fan_out = 1 * 25, 6 * 25
    bound = (6 / (fan_in + fan_out)) ** 0.5
    assert conv.weight.abs().max() <= bound
    assert conv.weight.abs().max() > 0.9 * bound  # uniform over the whole range, not PyTorch's default


def test_an_unknown_option_is_refused():
    with pytest.raises(TypeError):
        build_model({**DEFAULT, "dropout": 0.5})


def test_depthwise_average_pooling_is_average_pooling_forward_and_backward():
    x = torch.randn(4, 6, 28, 28).to(memory_format=torch.channels_last).requires_grad_()
    grad = torch.randn(4, 6, 14, 14)
    ours = DepthwiseAvgPool(6)(x)
    (ours_grad,) = torch.autograd.grad(ours, x, grad)
    reference = nn.functional.avg_pool2d(x, kernel_size=2, stride=2)
    (reference_grad,) = torch.autograd.grad(reference, x, grad)
    # Each output is a sum of 4 pixels times 1/4 (exact: a power of two), in whatever order.
    assert torch.all((ours - reference).abs() <= two_sums(4, 4 * nn.functional.avg_pool2d(x.abs(), 2)))
    # Each pixel's gradient is one term, 1/4 of its output's: at most one rounding either way.
    assert torch.all((ours_grad - reference_grad).abs() <= 2 * unit_roundoff(torch.float32) * reference_grad.abs())
    assert DepthwiseAvgPool(6).state_dict() == {}  # nothing learnt, nothing in a checkpoint
