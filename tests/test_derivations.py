import json

import pytest
import torch
from tolerances import relative_check, two_sums, unit_roundoff

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

pytestmark = pytest.mark.numerics


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
    # Each input's gradient sums at most c_out k^2 = 3 x 5 x 5 products.
    assert check_conv_gradient(generator, trials=30) < relative_check(75)
    # One pixel of upstream gradient spreads back as the kernel itself, not flipped, around that pixel.
    kernel = torch.arange(9, dtype=torch.float64).reshape(1, 1, 3, 3)
    upstream = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    upstream[..., 1, 1] = 1.0
    assert torch.equal(conv_input_gradient(upstream, kernel, padding=1)[0, 0], kernel[0, 0])


def test_bptt_closed_forms_match_autograd_and_the_notebooks_last_step_does_not(generator):
    worst = check_bptt(generator, trials=30, max_steps=25)
    # 25 steps: each term carries up to 2 x 25 roundings of its powers of b, then a 25-term sum.
    assert worst["a"] < relative_check(75) and worst["b"] < relative_check(75)
    assert worst["notebook_last_step_b"] > 0.1


def test_bptt_gradient_vanishes_or_explodes_with_b():
    x, one = torch.ones(60, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    grad_b = {b: abs(float(bptt_gradients(one, torch.tensor(b, dtype=torch.float64), x, 1.0)[1])) for b in (0.5, 1.5)}
    assert grad_b[0.5] < 10 and grad_b[1.5] > 1e9  # sum_k 0.5^k h stays bounded; 1.5^60 does not


def test_positional_dot_products_depend_on_the_offset_only(generator):
    checks, p, _ = check_positional(generator, positions=40, dim=32)
    assert max(checks.values()) < relative_check(32)  # dot products of length 32, sums of 16 cosines
    t, k = torch.arange(40, dtype=torch.float64).unsqueeze(1), torch.arange(16, dtype=torch.float64)
    # The angle t w_k, computed two ways, differs by a few roundings of a number below 40; sin and cos
    # are 1-Lipschitz and round once more.
    angle = 4 * unit_roundoff(torch.float64) * 40 + unit_roundoff(torch.float64)
    assert (p[:, 0::2] - torch.sin(t / 10000 ** (2 * k / 32))).abs().max() <= 2 * angle
    assert (p[:, 1::2] - torch.cos(t / 10000 ** (2 * k / 32))).abs().max() <= 2 * angle
    # sin^2 + cos^2 = 1 per frequency, each within 2 angle + 3 u; 32 squares add up to d/2 = 16.
    per_square = 2 * angle + 3 * unit_roundoff(torch.float64)
    assert ((p * p).sum(1) - 16).abs().max() <= 32 * per_square + two_sums(32, 16, torch.float64)


def test_the_stage_writes_its_checks_and_figures(tmp_path, raw_dir, params):
    params["derivations"].update(trials=3, sobel_digits=3, rnn_steps=8, pe_dim=8, pe_positions=6)
    derivations(params, raw_dir, tmp_path / "checks.json", tmp_path / "out")
    checks = json.loads((tmp_path / "checks.json").read_text())
    assert all(checks["passed"].values()) and len(checks["passed"]) == 6
    for name in ("ps1_sobel", "ps2_bptt", "ps3_positional"):
        assert (tmp_path / "out" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert positional_encoding(3, 4).shape == (3, 4)
