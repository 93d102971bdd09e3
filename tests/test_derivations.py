import json

import pytest
import torch

from lenet_mnist.derivations import (
    bptt_gradients,
    check_bptt,
    check_conv_gradient,
    check_positional,
    conv_input_gradient,
    derivations,
    positional_encoding,
    sobel_magnitude,
)


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


def test_sobel_finds_a_vertical_edge_and_nothing_on_flat_ground():
    image = torch.zeros(1, 1, 6, 6, dtype=torch.float64)
    image[..., 3:] = 1.0  # dark left, bright right
    magnitude = sobel_magnitude(image)[0]
    assert torch.equal(magnitude[1:5, 2], torch.full((4,), 4.0)) and torch.equal(
        magnitude[1:5, 3], torch.full((4,), 4.0)
    )
    assert torch.equal(magnitude[1:5, 0], torch.zeros(4)) and magnitude[1:5, 5].max() > 0  # the zero padding's edge


def test_the_input_gradient_is_a_full_convolution_with_the_flipped_kernel(generator):
    assert check_conv_gradient(generator, trials=30) < 1e-12
    # One pixel of upstream gradient spreads back as the kernel itself, not flipped, around that pixel.
    kernel = torch.arange(9, dtype=torch.float64).reshape(1, 1, 3, 3)
    upstream = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    upstream[..., 1, 1] = 1.0
    assert torch.equal(conv_input_gradient(upstream, kernel, padding=1)[0, 0], kernel[0, 0])


def test_bptt_closed_forms_match_autograd_and_the_seeds_last_step_does_not(generator):
    worst = check_bptt(generator, trials=30, max_steps=25)
    assert worst["a"] < 1e-12 and worst["b"] < 1e-12
    assert worst["notebook_last_step_b"] > 0.1


def test_bptt_gradient_vanishes_or_explodes_with_b():
    x, one = torch.ones(60, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    grad_b = {b: abs(float(bptt_gradients(one, torch.tensor(b, dtype=torch.float64), x, 1.0)[1])) for b in (0.5, 1.5)}
    assert grad_b[0.5] < 10 and grad_b[1.5] > 1e9  # sum_k 0.5^k h stays bounded; 1.5^60 does not


def test_positional_dot_products_depend_on_the_offset_only(generator):
    checks, p, _ = check_positional(generator, positions=40, dim=32)
    assert max(checks.values()) < 1e-12
    t, k = torch.arange(40, dtype=torch.float64).unsqueeze(1), torch.arange(16, dtype=torch.float64)
    assert torch.allclose(p[:, 0::2], torch.sin(t / 10000 ** (2 * k / 32)))
    assert torch.allclose(p[:, 1::2], torch.cos(t / 10000 ** (2 * k / 32)))
    assert torch.allclose((p * p).sum(1), torch.full((40,), 16.0, dtype=torch.float64))  # d/2 per position


def test_the_stage_writes_its_checks_and_figures(tmp_path, raw_dir, params):
    params["derivations"].update(trials=3, sobel_digits=3, rnn_steps=8, pe_dim=8, pe_positions=6)
    derivations(params, raw_dir, tmp_path / "out")
    checks = json.loads((tmp_path / "out/checks.json").read_text())
    assert all(checks["passed"].values()) and len(checks["passed"]) == 6
    for name in ("ps1_sobel", "ps2_bptt", "ps3_positional"):
        assert (tmp_path / "out" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert positional_encoding(3, 4).shape == (3, 4)
