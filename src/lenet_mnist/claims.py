"""Claims, a library: what a study states before its test set is read (params.yaml's
studies.<study>.claims), the per-seed value of a claim's metric in each phase, and the verdicts of
a study's claims, Holm-corrected as one family.

A claim compares a run with its reference seed by seed on one metric:
- `test_accuracy`: read from the evaluate stage's metrics; its validation phase reads the
  validation accuracy after the last epoch instead, so that no design decision sees the test set;
- `train_loss` after epoch `at`, and `epochs_to_train_loss`, the first epoch whose training loss
  is below `at` (Q2: how fast the training loss converges). A run that never gets there within its
  epochs counts as epochs + 1, a bound: the true difference is at least as large as the one found.
Training-loss claims read the same numbers in both phases: they say how training went, and the
training set is no held-out set."""

from lenet_mnist.stats import ALPHA, holm, paired_test


def label(claim):
    """The claim's metric as a key of JSON and dvc metrics (no '.'): test_accuracy,
    train_loss_epoch_5, epochs_to_train_loss_below_0_5."""
    if claim["metric"] == "test_accuracy":
        return "test_accuracy"
    if claim["metric"] == "train_loss":
        return f"train_loss_epoch_{claim['at']}"
    return "epochs_to_train_loss_below_" + f"{claim['at']:g}".replace(".", "_")


def key(claim):
    return f"{claim['run']}_vs_{claim['reference']}.{label(claim)}"


def describe(claim):
    """The metric in words, for tables."""
    if claim["metric"] == "test_accuracy":
        return "test accuracy"
    if claim["metric"] == "train_loss":
        return f"training loss after epoch {claim['at']}"
    return f"first epoch with training loss below {claim['at']:g}"


def epochs_to_loss(history, threshold):
    """The first epoch whose training loss is below the threshold; epochs + 1 if none is."""
    return next((int(row["epoch"]) for row in history if row["train_loss"] < threshold), len(history) + 1)


def validation_value(claim, history):
    """What the validation phase reads of one (run, seed) for the claim: never the test set."""
    if claim["metric"] == "test_accuracy":
        return history[-1]["val_accuracy"]
    return training_value(claim, history)


def training_value(claim, history):
    if claim["metric"] == "train_loss":
        return history[claim["at"] - 1]["train_loss"]
    return epochs_to_loss(history, claim["at"])


def confirmed_value(claim, history, metrics):
    """What the confirmatory phase reads of one (run, seed): test accuracy from its metrics."""
    if claim["metric"] == "test_accuracy":
        return metrics["test_accuracy"]
    return training_value(claim, history)


def judge(claims, differences, confirmatory, alpha=ALPHA):
    """Each claim's paired test, Holm-adjusted over the study's confirmatory claims, and its verdict:
    higher or lower where the adjusted p of 'no difference' is below alpha (whichever way the
    difference went), equivalent where TOST's adjusted p is, 'not resolved' otherwise, and
    'exploratory' (no verdict, no adjustment) for a claim its validation phase could not size."""
    tests = [paired_test(d, claim.get("margin")) for claim, d in zip(claims, differences, strict=True)]
    family = [i for i, c in enumerate(confirmatory) if c and tests[i]["p"] is not None]
    adjusted = dict(zip(family, holm([tests[i]["p"] for i in family])))
    judged = []
    for i, (claim, test) in enumerate(zip(claims, tests)):
        p = adjusted.get(i)
        if p is None:
            verdict = "exploratory"
        elif p >= alpha:
            verdict = "not resolved"
        elif "margin" in claim:
            verdict = "equivalent"
        else:
            verdict = "higher" if test["mean"] > 0 else "lower"
        judged.append({**test, "p_holm": p, "family_size": len(family) if p is not None else None, "verdict": verdict})
    return judged
