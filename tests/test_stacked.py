import pytest
import torch
import torch.nn.functional as F

from lenet_mnist.model import build_model
from lenet_mnist.stacked import StackedBatchNorm2d, StackedFlatten, stack, unstack

ARCHITECTURES = [
    {},
    {"batchnorm": "after_pool"},
    {"batchnorm": "before_activation"},
    {"activation": "relu", "pool": "max"},
    {"activation": "relu", "pool": "max", "batchnorm": "before_activation"},
]


def models(architecture, n=3):
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        out.append(build_model(architecture))
    return out


def batches(n, size=16, blank=False):
    """Random images; blank, with their top half 0, as MNIST's borders are: the first convolution's
    outputs there are equal (its bias), so max pooling meets ties."""
    torch.manual_seed(100)
    x = torch.rand(n, size, 1, 28, 28)
    if blank:
        x[..., :14, :] = 0
    return x, torch.randint(0, 10, (n, size))


def stacked_input(x):
    """(n, batch, 1, 28, 28) -> (batch, n, 28, 28): model m's images in channel m."""
    return x.squeeze(2).transpose(0, 1).contiguous()


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_unstacking_a_stack_gives_back_every_model_exactly(architecture):
    singles = models(architecture)
    copies = unstack(stack(singles), models(architecture | {"init": "xavier"}))
    for single, copy in zip(singles, copies):
        for (name, a), b in zip(single.state_dict().items(), copy.state_dict().values()):
            assert torch.equal(a, b), name


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_each_model_of_a_stack_sees_only_its_own_images(architecture):
    singles = models(architecture)
    x, _ = batches(len(singles))
    stacked = stack(singles)
    for mode in ("train", "eval"):
        for model in (*singles, stacked):
            getattr(model, mode)()
        out = stacked(stacked_input(x))
        for m, single in enumerate(singles):
            torch.testing.assert_close(out[m], single(x[m]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("blank", [False, True])
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_the_gradient_of_the_summed_losses_is_each_models_gradient(architecture, blank):
    """Then any elementwise optimizer (SGD, momentum, Adam) steps each model as if alone; Adam's
    division by the gradient's scale would only amplify rounding in a comparison of weights."""
    singles, x, y = models(architecture), *batches(3, blank=blank)
    stacked = stack(singles)
    logits = stacked(stacked_input(x))
    sum(F.cross_entropy(logits[m], y[m]) for m in range(len(singles))).backward()
    for m, single in enumerate(singles):
        F.cross_entropy(single(x[m]), y[m]).backward()
    # The stack's gradients, sliced as its parameters are: put into its parameters and unstacked.
    with torch.no_grad():
        for p in stacked.parameters():
            p.copy_(p.grad)
    sliced = unstack(stacked, models(architecture))
    for single, copy in zip(singles, sliced):
        for (name, p), q in zip(single.named_parameters(), copy.parameters()):
            torch.testing.assert_close(q, p.grad, rtol=1e-4, atol=1e-5, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_sgd_steps_on_the_summed_losses_are_steps_of_each_model(architecture):
    singles, x, y = models(architecture), *batches(3)
    stacked = stack(singles)
    big_opt = torch.optim.SGD(stacked.parameters(), lr=0.1, momentum=0.9)
    opts = [torch.optim.SGD(s.parameters(), lr=0.1, momentum=0.9) for s in singles]
    for _ in range(3):
        logits = stacked(stacked_input(x))
        loss = sum(F.cross_entropy(logits[m], y[m]) for m in range(len(singles)))
        big_opt.zero_grad()
        loss.backward()
        big_opt.step()
        for m, (single, opt) in enumerate(zip(singles, opts)):
            opt.zero_grad()
            F.cross_entropy(single(x[m]), y[m]).backward()
            opt.step()
    for single, copy in zip(singles, unstack(stacked, models(architecture))):
        for (name, a), b in zip(single.state_dict().items(), copy.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("layout", ["channels-last", "contiguous"])
@pytest.mark.parametrize("batch", [16, 5])  # 5 x 10 x 10 pixels: column sums in pairs, not eights
def test_the_stacks_batchnorm_is_torchs(batch, layout):
    """Output, gradients and running statistics of nn.BatchNorm2d in training mode, then the same in
    eval mode."""
    torch.manual_seed(0)
    ours, torchs = StackedBatchNorm2d(48), torch.nn.BatchNorm2d(48)
    with torch.no_grad():
        torchs.weight.uniform_(0.5, 1.5)
        torchs.bias.uniform_(-1, 1)
    ours.load_state_dict(torchs.state_dict())
    memory_format = torch.channels_last if layout == "channels-last" else torch.contiguous_format
    x = (3 + 2 * torch.randn(batch, 48, 10, 10)).contiguous(memory_format=memory_format)
    grad = torch.randn_like(x)
    for _ in range(2):
        outputs, inputs = [], []
        for layer in (ours, torchs):
            xi = x.clone().requires_grad_()
            out = layer(xi)
            out.backward(grad)
            outputs.append(out)
            inputs.append(xi)
        torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(inputs[0].grad, inputs[1].grad, rtol=1e-4, atol=1e-5)
        for name in ("weight", "bias"):
            torch.testing.assert_close(getattr(ours, name).grad, getattr(torchs, name).grad, rtol=1e-4, atol=1e-4)
    for name, buffer in torchs.named_buffers():
        torch.testing.assert_close(getattr(ours, name), buffer, rtol=1e-5, atol=1e-6, msg=name)
    ours.eval(), torchs.eval()
    torch.testing.assert_close(ours(x), torchs(x), rtol=1e-5, atol=1e-5)


def test_the_flattened_features_send_a_channels_last_gradient_back():
    x = torch.rand(4, 3 * 16, 5, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    flat = StackedFlatten(3)(x)
    assert torch.equal(flat, x.reshape(4, 3, -1).transpose(0, 1))
    grad = torch.rand_like(flat)
    flat.backward(grad)
    assert x.grad.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x.grad, grad.transpose(0, 1).reshape(x.shape))
