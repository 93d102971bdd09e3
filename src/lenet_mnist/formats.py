"""How numbers read in tables, captions and answers, a library: a mean with its interval over
seeds, a paired difference, a p-value, a claim's verdict in words."""

import math

from lenet_mnist.claims import describe


def format_interval(stat, spec, bounds=(-math.inf, math.inf)):
    """A mean, its 95% CI over seeds (clipped to `bounds`) and how many seeds, each number in the
    format `spec`."""
    if stat["ci95_low"] is None:
        return f"{stat['mean']:{spec}} (1 seed)"
    low, high = max(stat["ci95_low"], bounds[0]), min(stat["ci95_high"], bounds[1])
    return f"{stat['mean']:{spec}} [{low:{spec}}, {high:{spec}}] (n={stat['n']})"


def format_ci(stat, bounds=(0.0, 1.0)):
    """'0.9912 [0.9890, 0.9934] (n=10)': the interval shown clipped to what the quantity can be (an
    accuracy's [0, 1]); summary.json keeps it raw."""
    return format_interval(stat, ".4f", bounds)


def format_diff(stat, digits=4):
    """'+0.0123 [+0.0100, +0.0146] (n=10)': a mean paired difference, signed."""
    return format_interval(stat, f"+.{digits}f")


def format_p(p):
    if p is None:
        return ""
    return "< 0.0001" if p < 0.0001 else f"{p:.4f}"


def digits_of(claim):
    """Epochs are whole numbers; losses and accuracies read to the fourth decimal."""
    return 2 if claim["metric"] == "epochs_to_train_loss" else 4


def verdict_words(claim):
    """What the claim's adjusted test allows one to say, no more: a direction or equivalence, or,
    where it resolves neither, the largest effect its interval leaves possible (|mean| + half-width,
    the interval's farther end, written without '|', which reStructuredText reads as markup), or
    for an exploratory claim that it has no verdict."""
    v = claim["verdict"]
    if v in ("higher", "lower"):
        return v
    if v == "equivalent":
        return f"equivalent within +-{claim['margin']:g}"
    if claim["ci95_low"] is None:
        return "exploratory: one seed" if v == "exploratory" else "not resolved"
    farthest = max(abs(claim["ci95_low"]), abs(claim["ci95_high"]))
    bound = f"difference within +-{farthest:.{digits_of(claim)}f}"
    return f"exploratory, no verdict ({bound})" if v == "exploratory" else f"not resolved ({bound})"


def claim_line(claim):
    """'combined against baseline, first epoch with training loss below 1: ...'."""
    return f"{claim['run']} against {claim['reference']}, {describe(claim)}"
