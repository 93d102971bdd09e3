"""Stage `summarize`: every run's test metrics over its seeds, with 95% confidence intervals, and
each study's paired comparisons, in results/summary.json; its headline numbers (a mean and n per
run, a difference and interval per comparison) in results/metrics.json, the small file that
`dvc metrics` and `dvc exp show` read."""

import logging
import math
import statistics

from scipy import stats

from lenet_mnist.files import atomic_set, write_json
from lenet_mnist.jobs import run_seeds
from lenet_mnist.records import history_of, read_json, read_metrics

log = logging.getLogger(__name__)

METRICS = ["test_accuracy", "test_loss"]
# The smallest difference of test accuracy a stated comparison resolves: an interval that includes
# zero says "no effect larger than its half-width" only if that is at most this.
RESOLUTION = 0.001
THRESHOLDS = {"epochs_to_val_95": 0.95, "epochs_to_val_98": 0.98}  # Q2: how fast each variant gets there


def mean_ci(values, confidence=0.95):
    """Mean and Student-t confidence interval over seeds; no interval from a single seed."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return {"mean": mean, "ci95_low": None, "ci95_high": None, "n": n}
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "ci95_low": mean - half, "ci95_high": mean + half, "n": n}


def seeds_for(sd, half_width=RESOLUTION, confidence=0.95):
    """The fewest seeds whose paired Student-t interval is at most +-half_width wide, at this sd."""
    if sd == 0:
        return 2
    n = 2
    while float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n) > half_width:
        n += 1
    return n


def seeds_for_power(sd, effect, power=0.8, confidence=0.95):
    """The fewest seeds whose paired interval excludes zero with probability `power` when the true
    difference is `effect` and the differences spread by sd: t(n - 1) and z(power) standard errors
    fit in |effect|. Its normal form is n = (1.96 + 0.84)^2 sd^2 / effect^2 = 7.85 sd^2 / effect^2,
    half the 15.7 per arm of two unpaired samples of the same sd."""
    if effect == 0:
        return None
    z = float(stats.norm.ppf(power))
    n = 2
    while (float(stats.t.ppf((1 + confidence) / 2, n - 1)) + z) * sd / math.sqrt(n) > abs(effect):
        n += 1
    return n


def verdict(stat):
    """What the interval allows one to say: higher or lower (it excludes zero), no effect larger than
    its half-width (at most RESOLUTION), or inconclusive."""
    if stat["ci95_low"] is None:
        return "inconclusive"
    if stat["ci95_low"] > 0:
        return "higher"
    if stat["ci95_high"] < 0:
        return "lower"
    return "no effect" if stat["half_width"] <= RESOLUTION else "inconclusive"


def paired_difference(values, references):
    """Run minus reference, seed by seed (the same seed gives both the same subset, views where
    their policies agree, initial weights where their models agree, and batch order): the mean
    difference, its 95% Student-t interval, what that allows one to say, and the seeds an
    interval of +-RESOLUTION would need at the measured spread, and those that would find the
    measured mean difference with 80% power."""
    differences = [v - r for v, r in zip(values, references, strict=True)]
    stat = mean_ci(differences)
    if stat["ci95_low"] is None:
        return {
            **stat,
            "half_width": None,
            "sd": None,
            "verdict": "inconclusive",
            "seeds_for_resolution": None,
            "seeds_for_power": None,
        }
    stat["half_width"] = (stat["ci95_high"] - stat["ci95_low"]) / 2
    stat["sd"] = statistics.stdev(differences)
    return {
        **stat,
        "verdict": verdict(stat),
        "seeds_for_resolution": seeds_for(stat["sd"]),
        "seeds_for_power": seeds_for_power(stat["sd"], stat["mean"]),
    }


def comparisons(params, runs):
    """Each study's pairs, keyed '<run>_vs_<reference>' (dvc metrics flattens mappings, not lists),
    over the seeds both runs have."""

    def accuracies(run, seeds):
        return [runs[run]["seeds"][str(seed)]["test_accuracy"] for seed in seeds]

    def compare(run, reference):
        seeds = sorted(set(run_seeds(params, run)) & set(run_seeds(params, reference)))
        return {
            "run": run,
            "reference": reference,
            **paired_difference(accuracies(run, seeds), accuracies(reference, seeds)),
        }

    return {
        study: {f"{run}_vs_{reference}": compare(run, reference) for run, reference in spec["pairs"]}
        for study, spec in params["studies"].items()
        if spec.get("pairs")
    }


def epochs_to(history, threshold):
    """The first epoch whose validation accuracy reaches the threshold; None if none does."""
    return next((int(row["epoch"]) for row in history if row["val_accuracy"] >= threshold), None)


def speed(epochs):
    """How many seeds reached a threshold, and the median epoch if they all did."""
    reached = [e for e in epochs if e is not None]
    return {
        "reached": len(reached),
        "of": len(epochs),
        "median": statistics.median(reached) if len(reached) == len(epochs) else None,
    }


def headline(summary):
    """What `dvc metrics` and `dvc exp show` read: per run, its mean test accuracy and its number
    of seeds; per stated comparison, the mean paired difference and its 95% interval. Per-seed,
    per-class and per-epoch numbers stay in the summary and the per-(run, seed) files."""
    return {
        "runs": {
            run: {"test_accuracy": s["test_accuracy"]["mean"], "n": s["test_accuracy"]["n"]}
            for run, s in summary["runs"].items()
        },
        "comparisons": {
            study: {
                pair: {"diff": c["mean"], "ci95_low": c["ci95_low"], "ci95_high": c["ci95_high"]}
                for pair, c in pairs.items()
            }
            for study, pairs in summary["comparisons"].items()
        },
    }


def summarize(params, metrics_dir, history_dir, derivations_path, summary_path, headline_path):
    """`metrics_dir` and `history_dir` hold <run>/<seed>.json and .csv for every run and seed;
    `derivations_path` the checks of Problem Sets 1-3. Writes the whole summary, and its headline
    numbers apart."""
    runs = {}
    for run in params["runs"]:
        per_seed = {
            seed: read_metrics(metrics_dir / run / f"{seed}.json", run, seed) for seed in run_seeds(params, run)
        }
        for seed, metrics in per_seed.items():
            history = history_of(params, history_dir, run, seed)
            for key, threshold in THRESHOLDS.items():
                metrics[key] = epochs_to(history, threshold)
        runs[run] = {
            **{key: mean_ci([m[key] for m in per_seed.values()]) for key in METRICS},
            **{key: speed([m[key] for m in per_seed.values()]) for key in THRESHOLDS},
            "seeds": {str(seed): {key: m[key] for key in [*METRICS, *THRESHOLDS]} for seed, m in per_seed.items()},
        }
    studies = {
        study: {run: runs[run]["test_accuracy"] for run in spec["runs"]} for study, spec in params["studies"].items()
    }
    checks = read_json(derivations_path, "the checks written by lenet-mnist derivations")
    derivations = {"max_relative_difference": checks["max_relative_difference"], "passed": checks["passed"]}
    best = max(runs, key=lambda run: runs[run]["test_accuracy"]["mean"])
    summary = {
        "runs": runs,
        "studies": studies,
        "comparisons": comparisons(params, runs),
        "best": {"run": best, **runs[best]["test_accuracy"]},
        "derivations": derivations,
    }
    with atomic_set(summary_path, headline_path) as (summary_tmp, headline_tmp):  # both or neither
        write_json(summary_tmp, summary)
        write_json(headline_tmp, headline(summary))
    seeds = sum(len(run["seeds"]) for run in runs.values())
    log.info("%d runs, %d (run, seed) results, %d studies -> %s", len(runs), seeds, len(studies), summary_path)


def format_ci(stat):
    """'0.9912 [0.9890, 0.9934] (n=10)': a mean, its 95% CI over seeds and how many."""
    if stat["ci95_low"] is None:
        return f"{stat['mean']:.4f} (1 seed)"
    return f"{stat['mean']:.4f} [{stat['ci95_low']:.4f}, {stat['ci95_high']:.4f}] (n={stat['n']})"


def format_diff(stat):
    """'+0.0123 [+0.0100, +0.0146] (n=10)': a mean paired difference, its 95% CI and how many seeds."""
    if stat["ci95_low"] is None:
        return f"{stat['mean']:+.4f} (1 seed)"
    return f"{stat['mean']:+.4f} [{stat['ci95_low']:+.4f}, {stat['ci95_high']:+.4f}] (n={stat['n']})"
