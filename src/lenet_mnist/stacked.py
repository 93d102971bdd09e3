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


def column_sums(rows):
    """Sums of the columns of a contiguous (M, C) matrix, summed as (M / k, k * C) for the largest k
    of 8, 4, 2 that divides M: rows of a few dozen floats leave ATen's reduction over the first
    dimension unvectorised."""
    m, c = rows.shape
    k = next(k for k in (8, 4, 2, 1) if m % k == 0)
    return rows.view(-1, k * c).sum(0).view(k, c).sum(0)


def channel_rows(x):
    """A channels-last (batch, C, h, w) tensor as its (batch * h * w, C) matrix, without a copy."""
    return x.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def from_rows(rows, like):
    b, c, h, w = like.shape
    return rows.view(b, h, w, c).permute(0, 3, 1, 2)


class _BatchNormTraining(torch.autograd.Function):
    """BatchNorm2d's training-mode forward and backward on channels-last tensors, as a few passes of
    vectorised column sums and multiply-adds over the (pixels, channels) matrix: ATen's kernels
    for it run element by element over channels that are not a multiple of the vector width.
    Returns the output and the batch's mean and (biased) variance."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        rows = channel_rows(x)
        mean = column_sums(rows) / len(rows)
        centred = rows - mean
        var = column_sums(centred * centred) / len(rows)
        invstd = torch.rsqrt(var + eps)
        ctx.save_for_backward(centred, weight, invstd)
        return from_rows(torch.addcmul(bias, centred, weight * invstd), x), mean, var

    @staticmethod
    def backward(ctx, grad, _mean, _var):
        centred, weight, invstd = ctx.saved_tensors
        g, m = channel_rows(grad), len(centred)
        grad_bias = column_sums(g)
        grad_weight = column_sums(g * centred) * invstd  # the sum of grad x normalised input
        # dx = (g - mean(g) - xhat * mean(g * xhat)) * weight * invstd, as two multiply-adds:
        scale = weight * invstd
        dx = torch.addcmul(-grad_bias / m * scale, g, scale).addcmul_(centred, -grad_weight * invstd / m * scale)
        return from_rows(dx, grad), grad_weight, grad_bias, None


class StackedBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d (same parameters, buffers and numbers, to rounding), computed faster in training
    mode on channels-last tensors (_BatchNormTraining); in eval mode it is nn.BatchNorm2d."""

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        out, mean, var = _BatchNormTraining.apply(x, self.weight, self.bias, self.eps)
        with torch.no_grad():  # running statistics as nn.BatchNorm2d keeps them: the variance unbiased
            count = x.numel() // x.shape[1]
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * count / (count - 1), self.momentum)
            self.num_batches_tracked += 1
        return out


class _Flatten(torch.autograd.Function):
    """(batch, n * c, h, w) -> (n, batch, c * h * w), whose gradient comes back channels-last, the
    layout the pooling before it computes in (reshape's would be contiguous, which sends that
    pooling's backward down ATen's slow path for mixed layouts)."""

    @staticmethod
    def forward(ctx, x, n):
        ctx.shape = x.shape
        return x.reshape(x.shape[0], n, -1).transpose(0, 1)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(0, 1).reshape(ctx.shape).contiguous(memory_format=torch.channels_last), None


class StackedFlatten(nn.Module):
    """(batch, n * c, h, w) -> (n, batch, c * h * w): each model's features, flattened as nn.Flatten does."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def forward(self, x):
        return _Flatten.apply(x, self.n)


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
        stacked = StackedBatchNorm2d(n * first.num_features, first.eps, first.momentum)
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
    layers = [_stack_layer(layers) for layers in zip(*models)]
    # ReLU then max pooling is max pooling then ReLU, output and gradient alike (both go to the
    # window's first maximum, or are 0 where it is not positive), and the ReLU then runs on a
    # quarter of the pixels. Neither has parameters, so unstack() pairs layers as before.
    for i in range(len(layers) - 1):
        if isinstance(layers[i], nn.ReLU) and isinstance(layers[i + 1], nn.MaxPool2d):
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
    stacked = nn.Sequential(*layers)
    stacked.train(models[0].training)
    # Channels-last even with BatchNorm, which the stack computes as StackedBatchNorm2d.
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
