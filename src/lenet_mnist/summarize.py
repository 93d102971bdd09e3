"""Stage `summarize`: the confirmatory phase. Every run's test metrics over its seeds, with 95%
confidence intervals, and each study's claims judged as one family (claims.judge: the paired
test, Holm's correction, the verdict), with the phase the design stage fixed for each, in
results/summary.json; its headline numbers (a mean and n per run, a difference and adjusted p per
claim) in results/metrics.json, the small file that `dvc metrics` and `dvc exp show` read."""

import logging
import statistics

from lenet_mnist.claims import confirmed_value, judge, key
from lenet_mnist.data import N_CLASSES
from lenet_mnist.errors import LenetError
from lenet_mnist.files import atomic_set, write_json
from lenet_mnist.jobs import run_seeds
from lenet_mnist.records import history_of, read_json, read_metrics
from lenet_mnist.stats import mean_ci

log = logging.getLogger(__name__)

METRICS = ["test_accuracy", "test_loss"]
THRESHOLDS = {"epochs_to_val_95": 0.95, "epochs_to_val_98": 0.98}  # how fast each run gets there


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


def predictions(metrics):
    """The share of test images predicted as each class, and the share that each class is of the
    test set: from the confusion matrix's columns and rows."""
    matrix = metrics["confusion_matrix"]
    total = sum(map(sum, matrix))
    return (
        [sum(row[c] for row in matrix) / total for c in range(N_CLASSES)],
        [sum(matrix[c]) / total for c in range(N_CLASSES)],
    )


def run_summary(params, metrics_dir, history_dir, run):
    seeds = run_seeds(params, run)
    metrics = {seed: read_metrics(metrics_dir / run / f"{seed}.json", run, seed) for seed in seeds}
    histories = {seed: history_of(params, history_dir, run, seed) for seed in seeds}
    speeds = {key: [epochs_to(histories[s], t) for s in seeds] for key, t in THRESHOLDS.items()}
    predicted = {seed: predictions(m)[0] for seed, m in metrics.items()}
    return (
        {
            **{name: mean_ci([m[name] for m in metrics.values()]) for name in METRICS},
            **{name: speed(epochs) for name, epochs in speeds.items()},
            "per_class_accuracy": {
                str(c): mean_ci([m["per_class_accuracy"][str(c)] for m in metrics.values()]) for c in range(N_CLASSES)
            },
            "predicted_share": {str(c): mean_ci([p[c] for p in predicted.values()]) for c in range(N_CLASSES)},
            "test_class_share": {str(c): share for c, share in enumerate(predictions(metrics[seeds[0]])[1])},
            "seeds": {
                str(seed): {
                    **{name: metrics[seed][name] for name in METRICS},
                    **{name: epochs[i] for name, epochs in speeds.items()},
                }
                for i, seed in enumerate(seeds)
            },
        },
        histories,
        metrics,
    )


def per_class_differences(claim, seeds, metrics):
    """Test accuracy claims: the paired difference of each class's accuracy, over the same seeds."""
    run, reference = claim["run"], claim["reference"]
    return {
        str(c): mean_ci(
            [
                metrics[run][s]["per_class_accuracy"][str(c)] - metrics[reference][s]["per_class_accuracy"][str(c)]
                for s in seeds
            ]
        )
        for c in range(N_CLASSES)
    }


def study_claims(params, study, design, histories, metrics):
    """The study's claims judged as one family, each with its design and per-seed differences."""
    stated = params["studies"][study].get("claims", [])
    sized = design["claims"].get(study, {})
    missing = [key(c) for c in stated if key(c) not in sized]
    if missing:
        raise LenetError(
            f"results/design.json: claim {missing[0]} of study {study} was not sized (run the design stage)"
        )
    planned = [sized[key(c)] for c in stated]
    seeds, differences = [], []
    for claim in stated:
        both = sorted(set(run_seeds(params, claim["run"])) & set(run_seeds(params, claim["reference"])))

        def value(run, seed, claim=claim):
            return confirmed_value(claim, histories[run][seed], metrics[run][seed])

        seeds.append(both)
        differences.append([value(claim["run"], s) - value(claim["reference"], s) for s in both])
    judged = judge(stated, differences, [p["phase"] == "confirmatory" for p in planned])
    found = {}
    for claim, plan, both, diff, test in zip(stated, planned, seeds, differences, judged):
        found[key(claim)] = {
            "run": claim["run"],
            "reference": claim["reference"],
            "metric": claim["metric"],
            "at": claim.get("at"),
            "expect": claim["expect"],
            "margin": claim.get("margin"),
            "phase": plan["phase"],
            "fixed_in": "validation",
            "seeds_needed": plan["seeds_needed"],
            "power": plan["power"],
            **test,
            "differences": diff,
            **(
                {"per_class": per_class_differences(claim, both, metrics)} if claim["metric"] == "test_accuracy" else {}
            ),
        }
    return found


def ranking(params, study, runs, claims):
    """The study's run with the highest mean test accuracy, the runner-up, and whether a
    confirmatory claim of the study resolved the first from the second."""
    ranked = sorted(params["studies"][study]["runs"], key=lambda run: -runs[run]["test_accuracy"]["mean"])
    top, second = (ranked + [None])[:2]
    resolving = next(
        (
            k
            for k, c in claims.items()
            if (c["run"], c["reference"], c["metric"]) == (top, second, "test_accuracy") and c["verdict"] == "higher"
        ),
        None,
    )
    return {"highest_mean": top, "runner_up": second, "resolved_by": resolving}


def headline(summary):
    """What `dvc metrics` and `dvc exp show` read: per run, its mean test accuracy and its number of
    seeds; per claim, the mean paired difference and, if confirmatory, its Holm-adjusted p. Intervals, per-seed,
    per-class and per-epoch numbers stay in the summary and the per-(run, seed) files."""
    return {
        "runs": {
            run: {"test_accuracy": s["test_accuracy"]["mean"], "n": s["test_accuracy"]["n"]}
            for run, s in summary["runs"].items()
        },
        "claims": {  # an exploratory claim has no adjusted p: DVC drops nulls, so none is written
            study: {
                k: {"diff": c["mean"], **({"p_holm": c["p_holm"]} if c["p_holm"] is not None else {})}
                for k, c in claims.items()
            }
            for study, claims in summary["claims"].items()
            if claims
        },
    }


def summarize(params, metrics_dir, history_dir, design_path, derivations_path, summary_path, headline_path):
    """`metrics_dir` and `history_dir` hold <run>/<seed>.json and .csv for every run and seed;
    `design_path` the validation phase's sizing of the claims; `derivations_path` the checks of
    Problem Sets 1-3. Writes the whole summary, and its headline numbers apart."""
    design = read_json(design_path, "the design written by lenet-mnist design")
    runs, histories, metrics = {}, {}, {}
    for run in params["runs"]:
        runs[run], histories[run], metrics[run] = run_summary(params, metrics_dir, history_dir, run)
    claims = {study: study_claims(params, study, design, histories, metrics) for study in params["studies"]}
    studies = {
        study: {
            "runs": {run: runs[run]["test_accuracy"] for run in spec["runs"]},
            **ranking(params, study, runs, claims[study]),
        }
        for study, spec in params["studies"].items()
    }
    checks = read_json(derivations_path, "the checks written by lenet-mnist derivations")
    summary = {
        "runs": runs,
        "studies": studies,
        "claims": claims,
        "highest_mean": max(runs, key=lambda run: runs[run]["test_accuracy"]["mean"]),
        "derivations": {"max_relative_difference": checks["max_relative_difference"], "passed": checks["passed"]},
    }
    with atomic_set(summary_path, headline_path) as (summary_tmp, headline_tmp):  # both or neither
        write_json(summary_tmp, summary)
        write_json(headline_tmp, headline(summary))
    verdicts = [c["verdict"] for study in claims.values() for c in study.values()]
    log.info(
        "%d runs, %d claims (%s) -> %s",
        len(runs),
        len(verdicts),
        ", ".join(f"{verdicts.count(v)} {v}" for v in dict.fromkeys(verdicts)),
        summary_path,
    )
