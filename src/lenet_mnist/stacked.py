"""Several LeNets of one architecture (one per seed) computed as one model, for speed on a CPU.

Model m's channels are the m-th group of every convolution (groups=n), its fully connected layers
the m-th slice of batched matrix products, its BatchNorm the m-th block of channels of one
BatchNorm: each model sees only its own inputs and parameters, so a step on the sum of the models'
losses is a step of each model on its own loss. One step over n models costs less than n steps
(oneDNN and MKL work on larger operands; Python and dispatch overheads are paid once).
"""

import torch
from torch import nn

from lenet_mnist.model import DepthwiseAvgPool


class StackedLinear(nn.Module):
    """n Linear layers: (n, batch, in) -> (n, batch, out)."""

    def __init__(self, layers):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([layer.weight.detach().t() for layer in layers]))
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers]).unsqueeze(1))

    def forward(self, x):
        return torch.baddbmm(self.bias, x, self.weight)

    def unstack(self, m, layer):
        layer.weight.data.copy_(self.weight[m].t())
        layer.bias.data.copy_(self.bias[m, 0])


class StackedBatchNorm1d(nn.BatchNorm1d):
    """n BatchNorm1d layers of c features as one of n * c: (n, batch, c) -> (n, batch, c)."""

    def forward(self, x):
        n, batch, c = x.shape
        return super().forward(x.transpose(0, 1).reshape(batch, n * c)).view(batch, n, c).transpose(0, 1)


class StackedFlatten(nn.Module):
    """(batch, n * c, h, w) -> (n, batch, c * h * w): each model's features, flattened as nn.Flatten does."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def forward(self, x):
        batch = x.shape[0]
        return x.reshape(batch, self.n, -1).transpose(0, 1)


def _cat_state(layers, stacked):
    """Concatenate the parameters and buffers of per-model layers along their first dimension."""
    with torch.no_grad():
        for name, tensor in stacked.state_dict().items():
            parts = [layer.state_dict()[name] for layer in layers]
            tensor.copy_(parts[0] if tensor.dim() == 0 else torch.cat(parts).view_as(tensor))


def _stack_layer(layers):
    first, n = layers[0], len(layers)
    if isinstance(first, nn.Conv2d):
        stacked = nn.Conv2d(
            n * first.in_channels, n * first.out_channels, first.kernel_size, first.stride, first.padding, groups=n
        )
    elif isinstance(first, nn.BatchNorm2d):
        stacked = nn.BatchNorm2d(n * first.num_features, first.eps, first.momentum)
    elif isinstance(first, nn.BatchNorm1d):
        stacked = StackedBatchNorm1d(n * first.num_features, first.eps, first.momentum)
    elif isinstance(first, DepthwiseAvgPool):
        return DepthwiseAvgPool(n * first.weight.shape[0])
    elif isinstance(first, nn.Linear):
        return StackedLinear(layers)
    elif isinstance(first, nn.Flatten):
        return StackedFlatten(n)
    elif isinstance(first, (nn.Sigmoid, nn.ReLU, nn.MaxPool2d)):
        return first  # elementwise, or per channel
    else:
        raise TypeError(f"cannot stack {type(first).__name__}")
    _cat_state(layers, stacked)
    return stacked


def stack(models):
    """One model computing the given models (nn.Sequential of one architecture) side by side:
    input (batch, n, 28, 28), model m's images in channel m; output (n, batch, classes)."""
    stacked = nn.Sequential(*(_stack_layer(layers) for layers in zip(*models)))
    stacked.train(models[0].training)
    # Channels-last even with BatchNorm: with n times the channels, its kernels vectorise.
    return stacked.to(memory_format=torch.channels_last)


def unstack(stacked, models):
    """Copy each model's slice of the stacked parameters and buffers back into models (in place)."""
    n = len(models)
    with torch.no_grad():
        for big, layers in zip(stacked, zip(*models)):
            if isinstance(big, StackedLinear):
                for m, layer in enumerate(layers):
                    big.unstack(m, layer)
                continue
            for name, tensor in big.state_dict().items():
                for m, layer in enumerate(layers):
                    part = tensor if tensor.dim() == 0 else tensor.chunk(n)[m]
                    layer.state_dict()[name].copy_(part.view_as(layer.state_dict()[name]))
    return models
