"""Stage `figures`: one figure per study, the per-class paired differences of its test-accuracy
claims, the predicted classes of Q1's collapsed runs and the confusion matrix of the run with the
highest mean, each with a caption that states its measured numbers; each study's answer (the
hand-written sentences of workflow/report/answers.yaml with their numbers filled in from the
summary), its table of runs and its table of claims (report.json); and the data behind the
figures as CSV, for `dvc plots`: curves.csv (learning curves), sizes.csv (accuracy against
training-set size), confusion.csv."""

import logging
import re

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines that run the pipeline

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import yaml  # noqa: E402

from lenet_mnist.charts import curves_by_epoch, long_history, save  # noqa: E402
from lenet_mnist.errors import LenetError  # noqa: E402
from lenet_mnist.files import atomic_dir, atomic_path, write_json  # noqa: E402
from lenet_mnist.formats import (  # noqa: E402
    claim_line,
    digits_of,
    format_ci,
    format_diff,
    format_p,
    verdict_words,
)
from lenet_mnist.jobs import run_seeds  # noqa: E402
from lenet_mnist.records import history_of, read_json, read_metrics  # noqa: E402
from lenet_mnist.sizes import run_size  # noqa: E402
from lenet_mnist.stats import mean_ci  # noqa: E402

log = logging.getLogger(__name__)

ANSWERS = "workflow/report/answers.yaml"
PLACEHOLDER = re.compile(r"\{((?:claim|run) [^{}]+)\}")


def format_epochs(speed, cell=False):
    """The median epoch that reached a threshold, or how many seeds did not (in a sentence) or did
    (in a table cell)."""
    if speed["reached"] < speed["of"]:
        if cell:
            return f"{speed['reached']} of {speed['of']} seeds"
        return f"not reached by {speed['of'] - speed['reached']} of {speed['of']} seeds"
    return f"{speed['median']:g}" if cell else f"epoch {speed['median']:g}"


def save_csv(frame, path):
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def learning_curves(params, runs, history_dir, out_dir, study):
    """Draws a study's learning curves; returns their means over seeds, a row per run and epoch."""
    history = pd.concat(
        [
            pd.DataFrame(history_of(params, history_dir, run, seed)).assign(run=run, seed=seed)
            for run in runs
            for seed in run_seeds(params, run)
        ],
        ignore_index=True,
    )
    long = long_history(history, ids=("epoch", "run", "seed"))
    curves_by_epoch(
        long,
        out_dir / f"{study}.png",
        f"{study}: mean over each run's seeds, 95% CI",
        {"template": "{row_name} {col_name}"},
        hue="run",
        row="split",
        col="metric",
        facet_kws={"sharey": "col"},
        height=3,
        aspect=1.4,
    )
    means = history.drop(columns="seed").groupby(["run", "epoch"], sort=False).mean().reset_index()
    return means.assign(study=study)


def sgd_steps(params, run):
    """The updates a run makes: its epochs times its batches per epoch (the last one partial)."""
    spec = params["runs"][run]
    return spec["epochs"] * -(-run_size(params, run) // spec["batch_size"])


def curves_of(params, spec):
    """(curve, run) of each point of a data_size figure: the study's curves, or one per optimizer and
    policy (in a panel per model)."""
    if "curves" in spec:
        return [(curve, run) for curve, runs in spec["curves"].items() for run in runs]
    return [(f"{params['runs'][run]['optimizer']}, {params['runs'][run]['policy']}", run) for run in spec["runs"]]


def size_table(params, summary, spec):
    rows = []
    for curve, run in curves_of(params, spec):
        stat = summary["runs"][run]["test_accuracy"]
        rows.append(
            {
                "curve": curve,
                "run": run,
                "model": params["runs"][run]["model"],
                "policy": params["runs"][run]["policy"],
                "fraction": params["runs"][run]["fraction"],
                "n_train": run_size(params, run),
                "sgd_steps": sgd_steps(params, run),
                "test_accuracy": stat["mean"],
                "ci95_low": stat["ci95_low"],
                "ci95_high": stat["ci95_high"],
                "n": stat["n"],
            }
        )
    return pd.DataFrame(rows).sort_values(["curve", "n_train"], kind="stable")


def data_size(params, summary, spec, out_dir, study):
    """Test accuracy against training images, a line per curve and a panel per model."""
    table = size_table(params, summary, spec)
    models = list(dict.fromkeys(table["model"]))
    # A y-scale per panel: a model near 99% and one near 85% would leave the first one flat.
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4), squeeze=False)
    colors = dict(zip(dict.fromkeys(table["curve"]), sns.color_palette(n_colors=table["curve"].nunique())))
    for ax, model in zip(axes.flat, models):
        for curve, group in table[table["model"] == model].groupby("curve", sort=False):
            mean = group["test_accuracy"]
            bars = None if group["ci95_low"].isna().any() else [mean - group["ci95_low"], group["ci95_high"] - mean]
            ax.errorbar(group["n_train"], mean, yerr=bars, marker="o", capsize=3, color=colors[curve], label=curve)
        ax.set(xlabel="training images", ylabel="test accuracy", title=model)
        ax.legend(fontsize=8)
    fig.suptitle(f"{study}: mean over each run's seeds, 95% CI", y=1.02)
    save(fig, out_dir / f"{study}.png")
    return table.assign(study=study)


def confusion(params, summary, metrics_dir, out_dir):
    """Draws the confusion matrix of the run with the highest mean test accuracy, summed over
    seeds; its predictions, a row each, are in confusion.csv, as dvc's confusion template counts
    them."""
    best = summary["highest_mean"]
    matrices = {
        seed: np.array(read_metrics(metrics_dir / best / f"{seed}.json", best, seed)["confusion_matrix"])
        for seed in run_seeds(params, best)
    }
    actual, predicted = np.indices((10, 10)).reshape(2, -1)
    save_csv(
        pd.concat(
            [
                pd.DataFrame(
                    {
                        "seed": seed,
                        "actual": np.repeat(actual, matrix.ravel()),
                        "predicted": np.repeat(predicted, matrix.ravel()),
                    }
                )
                for seed, matrix in matrices.items()
            ]
        ),
        out_dir / "confusion.csv",
    )
    total = sum(matrices.values())
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    sns.heatmap(total, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax, annot_kws={"fontsize": 7})
    ax.set(xlabel="predicted", ylabel="actual", title=f"{best}: test set, summed over {len(matrices)} seeds")
    save(fig, out_dir / "confusion.png")
    off = total.copy()
    off[range(10), range(10)] = 0
    worst = divmod(int(off.argmax()), 10)
    return best, int(off.sum()), worst, int(off.max())


def describe_curves(summary, runs):
    """Caption of a learning-curve study: each run's test accuracy and speed, best first."""
    stats = {run: summary["runs"][run] for run in runs}
    ranked = sorted(runs, key=lambda run: -stats[run]["test_accuracy"]["mean"])
    lines = [
        f"{run}: test accuracy {format_ci(stats[run]['test_accuracy'])}, 95% validation accuracy "
        f"{format_epochs(stats[run]['epochs_to_val_95'])}, 98% {format_epochs(stats[run]['epochs_to_val_98'])}"
        for run in ranked
    ]
    return "Learning curves, mean over seeds with 95% CI bands. " + "; ".join(lines) + "."


def describe_sizes(table):
    """Caption of a data-size study: accuracy by size, curve by curve."""

    def stat(row):
        low, high = (None, None) if pd.isna(row.ci95_low) else (row.ci95_low, row.ci95_high)
        return {"mean": row.test_accuracy, "ci95_low": low, "ci95_high": high, "n": row.n}

    lines = [
        f"{curve}: " + ", ".join(f"{row.n_train:,} images {format_ci(stat(row))}" for row in group.itertuples())
        for curve, group in table.groupby("curve", sort=False)
    ]
    return "Test accuracy against training-set size, mean over seeds with 95% CI. " + "; ".join(lines) + "."


def claim_rows(summary, study):
    """A row per claim of the study: what it states, the phase and seeds the design fixed, its
    paired difference, raw and Holm-adjusted p, and its verdict in words."""
    return [
        {
            "claim": claim_line(claim),
            "expect": f"equivalent within +-{claim['margin']:g}" if claim["margin"] else claim["expect"],
            "phase": claim["phase"],
            "seeds_needed": claim["seeds_needed"] or "more than the budget",
            "power": f"{claim['power']:.2f}",
            "difference": format_diff(claim, digits_of(claim)),
            "p": format_p(claim["p"]),
            "p_holm": format_p(claim["p_holm"]),
            "verdict": verdict_words(claim),
        }
        for claim in summary["claims"].get(study, {}).values()
    ]


def render_answer(text, summary):
    """A study's hand-written answer with its numbers filled in from the summary: {claim STUDY KEY}
    becomes the claim's difference, interval, n and verdict; {run RUN} a run's mean test accuracy,
    its interval and n."""

    def fill(match):
        kind, *names = match[1].split()
        try:
            if kind == "claim":
                claim = summary["claims"][names[0]][names[1]]
                return f"{format_diff(claim, digits_of(claim))}, {verdict_words(claim)}"
            return format_ci(summary["runs"][names[0]]["test_accuracy"])
        except (KeyError, IndexError):
            raise LenetError(f"{ANSWERS}: {{{match[1]}}} names no claim or run of the summary") from None

    return PLACEHOLDER.sub(fill, " ".join(text.split()))


def ranking_words(summary, study):
    """The run with the highest mean, and whether a paired claim resolved it from the runner-up."""
    ranked = summary["studies"][study]
    top, second = ranked["highest_mean"], ranked["runner_up"]
    if second is None:
        return f"{top}: {format_ci(summary['runs'][top]['test_accuracy'])}."
    if ranked["resolved_by"]:
        return f"Best: {top}, resolved from the runner-up {second} by a paired claim."
    return f"Highest mean: {top}, not resolved from {second} (no confirmatory paired claim)."


def study_table(params, summary, spec):
    """A row per run of the study: its updates, test accuracy and how fast it gets there."""
    return [
        {
            "run": run,
            "sgd_steps": f"{sgd_steps(params, run):,}",
            "test_accuracy": format_ci(summary["runs"][run]["test_accuracy"]),
            "epochs_to_val_95": format_epochs(summary["runs"][run]["epochs_to_val_95"], cell=True),
            "epochs_to_val_98": format_epochs(summary["runs"][run]["epochs_to_val_98"], cell=True),
        }
        for run in spec["runs"]
    ]


def per_class(summary, study, out_dir):
    """A heatmap of the study's test-accuracy claims: each class's paired difference of accuracy
    (run minus reference, mean over seeds). Returns the caption, or None if it has no such claim."""
    claims = [c for c in summary["claims"].get(study, {}).values() if "per_class" in c]
    if not claims:
        return None
    frame = pd.DataFrame(
        [[c["per_class"][str(k)]["mean"] for k in range(10)] for c in claims],
        index=[f"{c['run']} - {c['reference']}" for c in claims],
    )
    limit = float(np.abs(frame.to_numpy()).max()) or 1.0
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(claims) + 1.5))
    sns.heatmap(frame, annot=True, fmt="+.3f", cmap="RdBu", vmin=-limit, vmax=limit, ax=ax, annot_kws={"fontsize": 7})
    ax.set(xlabel="digit", ylabel="", title=f"{study}: per-class paired difference of test accuracy, mean over seeds")
    save(fig, out_dir / f"{study}_per_class.png")
    worst = [
        f"{c['run']} - {c['reference']}: digit {k} {c['per_class'][str(k)]['mean']:+.4f}"
        for c in claims
        for k in [min(range(10), key=lambda k: c["per_class"][str(k)]["mean"])]
    ]
    return (
        "Per-class paired differences of test accuracy (run minus reference, mean over the claim's seeds); "
        "each claim's most lowered digit: " + "; ".join(worst) + "."
    )


def predicted_classes(summary, runs, out_dir, study):
    """What a study's runs predict: each class's share of the test predictions beside its share of
    the test set (a run that predicts one class scores that class's share). Returns the caption."""
    rows = [
        {"run": run, "digit": int(c), "share": stat["mean"], "of": "predictions"}
        for run in runs
        for c, stat in summary["runs"][run]["predicted_share"].items()
    ]
    first = summary["runs"][runs[0]]["test_class_share"]
    rows += [{"run": "test set", "digit": int(c), "share": share, "of": "test labels"} for c, share in first.items()]
    grid = sns.catplot(data=pd.DataFrame(rows), x="digit", y="share", hue="run", kind="bar", height=3.5, aspect=2)
    grid.figure.suptitle(f"{study}: share of test images predicted as each digit, mean over seeds", y=1.03)
    save(grid.figure, out_dir / f"{study}_predictions.png")
    words = []
    for run in runs:
        shares = summary["runs"][run]["predicted_share"]
        top = max(shares, key=lambda c: shares[c]["mean"])
        words.append(
            f"{run} predicts digit {top} for {shares[top]['mean']:.1%} of the test images, "
            f"which are {first[top]:.2%} digit {top}s"
        )
    return "; ".join(words) + "."


def notebook_comparison(params, summary, history_dir):
    """Each number the notebook printed beside ours for the same run: its test accuracy, or the
    validation accuracy after the last epoch, as means over our seeds."""
    rows = []
    for study, spec in params["studies"].items():
        for run, reported in spec.get("notebook_reported", {}).items():
            for metric, value in reported.items():
                if metric == "test_accuracy":
                    ours = summary["runs"][run]["test_accuracy"]
                else:
                    ours = mean_ci(
                        [
                            history_of(params, history_dir, run, seed)[-1]["val_accuracy"]
                            for seed in run_seeds(params, run)
                        ]
                    )
                rows.append(
                    {"study": study, "run": run, "metric": metric, "notebook": f"{value:.4f}", "ours": format_ci(ours)}
                )
    return rows


def figures(params, summary_path, answers_path, history_dir, metrics_dir, out_dir):
    """The study figures, their tables and the report's texts, written as a set."""
    with atomic_dir(out_dir, "figures") as staging:
        write_figures(params, summary_path, answers_path, history_dir, metrics_dir, staging)


def read_answers(path, params):
    """The hand-written answers, a text per study; a study without one gets none, and a warning."""
    try:
        answers = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise LenetError(f"{path}: not valid YAML ({e.__class__.__name__})") from None
    if not isinstance(answers, dict) or not all(isinstance(text, str) for text in answers.values()):
        raise LenetError(f"{path}: not the answers of the studies (a mapping of study names to texts)")
    for study in params["studies"]:
        if study not in answers:
            log.warning("%s: no answer for study %s; its report shows its tables alone", path, study)
    return answers


def write_figures(params, summary_path, answers_path, history_dir, metrics_dir, out_dir):
    summary = read_json(summary_path, "a summary written by lenet-mnist summarize")
    written = read_answers(answers_path, params)
    captions, answers, curves, sizes = {}, [], [], []  # answers: a list, in the order of params.yaml
    for study, spec in params["studies"].items():
        if spec["figure"] == "learning_curves":
            curves.append(learning_curves(params, spec["runs"], history_dir, out_dir, study))
            captions[study] = describe_curves(summary, spec["runs"])
        else:
            sizes.append(data_size(params, summary, spec, out_dir, study))
            captions[study] = describe_sizes(sizes[-1])
        if caption := per_class(summary, study, out_dir):
            captions[f"{study}_per_class"] = caption
        answers.append(
            {
                "study": study,
                "question": spec["question"],
                "answer": render_answer(written.get(study, ""), summary),
                "ranking": ranking_words(summary, study),
                "table": study_table(params, summary, spec),
                "claims": claim_rows(summary, study),
            }
        )
    first = next(iter(params["studies"]))  # Q1: what the collapsed runs predict
    captions[f"{first}_predictions"] = predicted_classes(summary, params["studies"][first]["runs"], out_dir, first)
    # The data behind the study figures, a row per study, run and epoch or size, for `dvc plots`.
    for name, frames in (("curves", curves), ("sizes", sizes)):
        if frames:
            table = pd.concat(frames, ignore_index=True)
            save_csv(table[["study", *table.columns.drop("study")]], out_dir / f"{name}.csv")
    for run, stats in summary["runs"].items():  # the per-run learning curves of the plot stage
        captions[f"run {run}"] = (
            f"Learning curves of run {run}, mean over seeds with 95% CI bands: test accuracy "
            f"{format_ci(stats['test_accuracy'])}, 95% validation accuracy "
            f"{format_epochs(stats['epochs_to_val_95'])}, 98% {format_epochs(stats['epochs_to_val_98'])}."
        )
    best, errors, (actual, predicted), count = confusion(params, summary, metrics_dir, out_dir)
    seeds = len(run_seeds(params, best))
    captions["confusion"] = (
        f"Confusion matrix of {best}, the run with the highest mean test accuracy, summed over "
        f"{seeds} seeds: {errors} errors in {seeds * 10_000:,} predictions; the most frequent "
        f"is a {actual} taken for a {predicted} ({count} times)."
    )
    write_json(
        out_dir / "report.json",
        {
            "captions": captions,
            "answers": answers,
            "notebook_comparison": notebook_comparison(params, summary, history_dir),
        },
    )
    log.info("%d study figures and the confusion matrix of %s", len(params["studies"]), best)
