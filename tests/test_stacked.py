import pytest
import torch
import torch.nn.functional as F

from lenet_mnist.model import build_model
from lenet_mnist.stacked import stack, unstack

ARCHITECTURES = [
    {},
    {"batchnorm": "after_pool"},
    {"batchnorm": "before_activation"},
    {"activation": "relu", "pool": "max", "batchnorm": "before_activation"},
]


def models(architecture, n=3):
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        out.append(build_model(architecture))
    return out


def batches(n, size=16):
    torch.manual_seed(100)
    return torch.rand(n, size, 1, 28, 28), torch.randint(0, 10, (n, size))


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


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_the_gradient_of_the_summed_losses_is_each_models_gradient(architecture):
    """Then any elementwise optimizer (SGD, momentum, Adam) steps each model as if alone; Adam's
    division by the gradient's scale would only amplify rounding in a comparison of weights."""
    singles, x, y = models(architecture), *batches(3)
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
