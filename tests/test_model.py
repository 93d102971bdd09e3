import pytest
import torch
from torch import nn

from lenet_mnist.model import build_model, lenet

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
        "AvgPool2d",
        "Conv2d",
        "Sigmoid",
        "AvgPool2d",
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
        "AvgPool2d",
        "BatchNorm2d",
        "Conv2d",
        "Sigmoid",
        "AvgPool2d",
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


@pytest.mark.parametrize("batchnorm", ["none", "after_pool"])
def test_the_model_a_train_job_builds_is_the_model_lenet_writes(batchnorm):
    """build_model is lenet() with its weights in channels-last layout where it has no BatchNorm: the
    same layers and the same initial weights, so the same function."""
    torch.manual_seed(0)
    built = build_model({**DEFAULT, "batchnorm": batchnorm})
    torch.manual_seed(0)
    written = lenet(**{**DEFAULT, "batchnorm": batchnorm})
    assert kinds(built) == kinds(written)
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), written.state_dict().values()))
    second = [layer for layer in built if isinstance(layer, nn.Conv2d)][1]  # 6 channels in: a layout to tell
    assert second.weight.is_contiguous(memory_format=torch.channels_last) == (batchnorm == "none")
