"""Stage `derivations`: the midterm's Problem Sets 1-3 as computations checked against autograd.

- PS1: the Sobel filters and the gradient magnitude on MNIST test digits; the gradient of a loss
  on O = I * K (PyTorch's conv2d, a cross-correlation) with respect to I is the upstream gradient
  padded by k - 1 - p and correlated with the kernel flipped in both axes (a full convolution).
- PS2: h_t = a x_t + b h_{t-1}, loss on h_T: dl/da = dl/dh_T sum_t b^(T-t) x_t and
  dl/db = dl/dh_T sum_t b^(T-t) h_{t-1}. The notebook kept only the last term (x_T and h_{T-1}).
- PS3: sinusoidal encodings, w_k = 1 / 10000^(2k/d): p_t . p_tau = sum_k cos(w_k (t - tau)), a
  function of t - tau alone, and y_t . y_tau = x_t . x_tau + x_t . p_tau + p_t . x_tau + p_t . p_tau.

Every check is the largest relative difference between the closed form and autograd (or the
direct computation), in float64, over random cases drawn from the stage's seed.
"""

import logging

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines that run the pipeline

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lenet_mnist.charts import save  # noqa: E402
from lenet_mnist.data import read_part  # noqa: E402
from lenet_mnist.files import atomic_dir, write_json  # noqa: E402
from lenet_mnist.model import pixels  # noqa: E402

log = logging.getLogger(__name__)

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64)
SOBEL_Y = SOBEL_X.T.contiguous()


def rel_diff(a, b):
    """Largest difference relative to the largest magnitude of the reference b."""
    return float((a - b).abs().max() / b.abs().max().clamp_min(torch.finfo(b.dtype).tiny))


# PS1 ------------------------------------------------------------------------------------------


def sobel_magnitude(images):
    """sqrt(G_x^2 + G_y^2) of N x 1 x H x W images, same size (zero padding)."""
    kernels = torch.stack([SOBEL_X, SOBEL_Y]).unsqueeze(1).to(images.dtype)
    gx, gy = F.conv2d(images, kernels, padding=1).unbind(1)
    return torch.sqrt(gx**2 + gy**2)


def conv_input_gradient(upstream, kernel, padding):
    """dl/dI for O = conv2d(I, K, padding), stride 1: the upstream gradient, padded by k - 1 - p,
    correlated with K flipped in both spatial axes and with its in/out channels swapped."""
    k = kernel.shape[-1]
    flipped = kernel.flip(-1, -2).transpose(0, 1)
    return F.conv2d(F.pad(upstream, [k - 1 - padding] * 4), flipped)


def check_conv_gradient(generator, trials):
    worst = 0.0
    for _ in range(trials):
        n, c_in, c_out = (int(v) for v in torch.randint(1, 4, (3,), generator=generator))
        k = int(torch.randint(1, 6, (1,), generator=generator))
        padding = int(torch.randint(0, k, (1,), generator=generator))
        side = int(torch.randint(k, 12, (1,), generator=generator))
        image = torch.randn(n, c_in, side, side, generator=generator, dtype=torch.float64, requires_grad=True)
        kernel = torch.randn(c_out, c_in, k, k, generator=generator, dtype=torch.float64)
        out = F.conv2d(image, kernel, padding=padding)
        upstream = torch.randn(out.shape, generator=generator, dtype=torch.float64)
        (autograd,) = torch.autograd.grad(out, image, upstream)
        worst = max(worst, rel_diff(conv_input_gradient(upstream, kernel, padding), autograd))
    return worst


# PS2 ------------------------------------------------------------------------------------------


def rnn_states(a, b, x):
    """h_0 = 0, h_1 .. h_T of h_t = a x_t + b h_{t-1}."""
    states = [torch.zeros((), dtype=x.dtype)]
    for x_t in x:
        states.append(a * x_t + b * states[-1])
    return torch.stack(states)


def bptt_gradients(a, b, x, upstream):
    """(dl/da, dl/db) in closed form, given dl/dh_T."""
    h = rnn_states(a, b, x)
    powers = b ** torch.arange(len(x) - 1, -1, -1, dtype=x.dtype)  # b^(T-t) for t = 1 .. T
    return upstream * (powers * x).sum(), upstream * (powers * h[:-1]).sum()


def check_bptt(generator, trials, max_steps):
    worst = {"a": 0.0, "b": 0.0, "notebook_last_step_b": 0.0}
    for _ in range(trials):
        steps = int(torch.randint(1, max_steps + 1, (1,), generator=generator))
        x = torch.randn(steps, generator=generator, dtype=torch.float64)
        a, b = (
            torch.empty((), dtype=torch.float64).uniform_(-1.2, 1.2, generator=generator).requires_grad_()
            for _ in range(2)
        )
        upstream = torch.randn((), generator=generator, dtype=torch.float64)
        h = rnn_states(a, b, x)
        grad_a, grad_b = torch.autograd.grad(h[-1], (a, b), upstream)
        closed_a, closed_b = bptt_gradients(a.detach(), b.detach(), x, upstream)
        worst["a"] = max(worst["a"], rel_diff(closed_a, grad_a))
        worst["b"] = max(worst["b"], rel_diff(closed_b, grad_b))
        if steps > 1:  # the notebook's answer, dl/dh_T h_{T-1}
            worst["notebook_last_step_b"] = max(
                worst["notebook_last_step_b"], rel_diff(upstream * h[-2].detach(), grad_b)
            )
    return worst


# PS3 ------------------------------------------------------------------------------------------


def frequencies(dim):
    """w_k = 1 / 10000^(2k/d), k = 0 .. d/2 - 1."""
    return 1.0 / 10000 ** (2 * torch.arange(dim // 2, dtype=torch.float64) / dim)


def positional_encoding(positions, dim):
    """p_t = [sin(w_0 t), cos(w_0 t), ..., sin(w_k t), cos(w_k t), ...]."""
    t = torch.arange(positions, dtype=torch.float64).unsqueeze(1)
    w = frequencies(dim)
    return torch.stack([torch.sin(w * t), torch.cos(w * t)], dim=2).reshape(positions, dim)


def check_positional(generator, positions, dim):
    p = positional_encoding(positions, dim)
    gram = p @ p.T
    w = frequencies(dim)
    offsets = torch.arange(positions, dtype=torch.float64)
    closed = torch.cos(w * (offsets.unsqueeze(1) - offsets).unsqueeze(2)).sum(2)
    # Shift invariance: every entry equals the one of its offset in the first row (or column).
    by_offset = torch.stack([torch.diagonal(gram, d).sub(gram[0, d]).abs().max() for d in range(positions)])
    x = torch.randn(positions, dim, generator=generator, dtype=torch.float64)
    y = x + p
    parts = x @ x.T + x @ p.T + p @ x.T + p @ p.T
    return (
        {
            "dot_closed_form": rel_diff(gram, closed),
            "shift_invariance": float(by_offset.max() / gram.abs().max()),
            "decomposition": rel_diff(parts, y @ y.T),
        },
        p,
        x,
    )


# Figures --------------------------------------------------------------------------------------


def plot_sobel(images, path):
    magnitude = sobel_magnitude(images)
    fig, axes = plt.subplots(2, len(images), figsize=(1.2 * len(images), 2.6), squeeze=False)
    for col, (image, edges) in enumerate(zip(images[:, 0], magnitude)):
        axes[0, col].imshow(image.numpy(), cmap="gray_r")
        axes[1, col].imshow(edges.numpy(), cmap="magma")
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("digit")
    axes[1, 0].set_ylabel("|G|")
    fig.suptitle("Sobel gradient magnitude sqrt(Gx^2 + Gy^2) of test digits", fontsize=9)
    save(fig, path)


def plot_bptt(spec, generator, path):
    """|dl/db| against T for each b (a = 1, dl/dh_T = 1), and for the largest b what clipping the
    gradient to `clip` and truncating BPTT to the last `truncate` steps make of it."""
    x = torch.randn(spec["rnn_steps"], generator=generator, dtype=torch.float64).abs()
    steps = range(1, spec["rnn_steps"] + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for b in spec["rnn_weights"]:
        grads = [
            abs(
                float(
                    bptt_gradients(
                        torch.tensor(1.0, dtype=torch.float64), torch.tensor(b, dtype=torch.float64), x[:T], 1.0
                    )[1]
                )
            )
            for T in steps
        ]
        left.plot(steps, grads, marker=".", label=f"b = {b:g}")
    left.set(yscale="log", xlabel="T", ylabel="|dl/db|", title="full BPTT")
    left.legend()
    b = torch.tensor(max(spec["rnn_weights"]), dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)
    full = [abs(float(bptt_gradients(one, b, x[:T], 1.0)[1])) for T in steps]
    clipped = [min(g, spec["clip"]) for g in full]
    truncated = []
    for T in steps:
        h = rnn_states(one, b, x[:T])
        k = min(spec["truncate"], T)
        powers = b ** torch.arange(k - 1, -1, -1, dtype=torch.float64)
        truncated.append(abs(float((powers * h[T - k : T]).sum())))
    right.plot(steps, full, marker=".", label="full")
    right.plot(steps, clipped, marker=".", label=f"clipped to {spec['clip']:g}")
    right.plot(steps, truncated, marker=".", label=f"truncated to {spec['truncate']} steps")
    right.set(yscale="log", xlabel="T", title=f"b = {float(b):g}")
    right.legend()
    save(fig, path)


def plot_positional(p, x, path):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    for ax, (matrix, title) in zip(
        axes,
        [
            (p @ p.T, "p_t . p_tau"),
            (x @ x.T, "x_t . x_tau (random tokens)"),
            ((x + p) @ (x + p).T, "y_t . y_tau, y = x + p"),
        ],
    ):
        image = ax.imshow(matrix.numpy(), cmap="viridis")
        ax.set(title=title, xlabel="tau", ylabel="t")
        fig.colorbar(image, ax=ax, fraction=0.046)
    save(fig, path)


def derivations(params, raw_dir, checks_path, out_dir):
    """The checks (checks_path), which summarize reads, and a figure per problem set (out_dir)."""
    spec = params["derivations"]
    generator = torch.Generator().manual_seed(spec["seed"])
    torch.use_deterministic_algorithms(True)
    images, _ = read_part(raw_dir, "test")
    digits = pixels(torch.from_numpy(np.require(images[: spec["sobel_digits"]], requirements=["C", "W"]))).double()
    positional, p, x = check_positional(generator, spec["pe_positions"], spec["pe_dim"])
    checks = {
        "ps1_conv_input_gradient": check_conv_gradient(generator, spec["trials"]),
        **{f"ps2_bptt_{k}": v for k, v in check_bptt(generator, spec["trials"], spec["rnn_steps"]).items()},
        **{f"ps3_{k}": v for k, v in positional.items()},
    }
    with atomic_dir(out_dir, "derivations") as written:  # the figures: complete or absent
        plot_sobel(digits, written / "ps1_sobel.png")
        plot_bptt(spec, generator, written / "ps2_bptt.png")
        plot_positional(p, x, written / "ps3_positional.png")
    write_json(
        checks_path,
        {
            "max_relative_difference": checks,
            "tolerance": spec["tolerance"],
            "passed": {k: v < spec["tolerance"] for k, v in checks.items() if not k.startswith("ps2_bptt_notebook")},
            "captions": captions(spec, checks),
        },
    )
    for name, value in checks.items():
        log.info("%-32s max relative difference %.3g", name, value)


def captions(spec, checks):
    """The report's caption of each figure: the corrected answer and its measured check."""
    n = spec["trials"]
    return {
        "ps1_sobel": (
            f"Sobel gradient magnitude sqrt(Gx^2 + Gy^2) of the first {spec['sobel_digits']} test digits. "
            "For O = I * K (conv2d, a cross-correlation, stride 1, padding p), dl/dI is dl/dO padded by k - 1 - p "
            "and correlated with K flipped in both axes: a full convolution (conv_transpose2d). The notebook wrote "
            "only the chain rule, dl/dO . dO/dI. Largest relative difference from autograd over "
            f"{n} random images, kernels, paddings and upstream gradients: {checks['ps1_conv_input_gradient']:.1e}."
        ),
        "ps2_bptt": (
            "h_t = a x_t + b h_(t-1): dl/da = dl/dh_T sum_t b^(T-t) x_t and dl/db = dl/dh_T sum_t b^(T-t) h_(t-1) "
            f"match autograd within {checks['ps2_bptt_a']:.1e} and {checks['ps2_bptt_b']:.1e} over {n} random "
            "cases; the notebook's dl/db = dl/dh_T h_(T-1) keeps only the last term and is off by up to "
            f"{checks['ps2_bptt_notebook_last_step_b']:.0%}. Left: the early terms shrink as b^(T-t) for abs(b) < 1 "
            "(vanishing) and grow for abs(b) > 1 (exploding). Right: for the largest b, clipping caps the gradient "
            f"at {spec['clip']:g}, and truncated BPTT ({spec['truncate']} steps) drops the early terms."
        ),
        "ps3_positional": (
            f"p_t . p_tau = sum_k cos(w_k (t - tau)) for d = {spec['pe_dim']} (largest relative difference "
            f"{checks['ps3_dot_closed_form']:.1e}): it depends on t - tau only ({checks['ps3_shift_invariance']:.1e}) "
            "and peaks at t = tau. y_t . y_tau = x_t . x_tau + x_t . p_tau + p_t . x_tau + p_t . p_tau "
            f"({checks['ps3_decomposition']:.1e}): attention scores of y add to the tokens' similarity a term that "
            "favours nearby positions, and cross terms between tokens and positions."
        ),
    }
