"""Stage `figures`: one figure per study and the best run's confusion matrix, each with a caption
that states its measured numbers, plus each study's answer (a sentence or two and a table of its
runs and paired differences), all computed here from the metrics (report.json); and the data
behind the figures as CSV, for `dvc plots`: curves.csv (learning curves), sizes.csv (accuracy
against training-set size), confusion.csv."""

import logging

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines that run the pipeline

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from lenet_mnist.files import atomic_dir, atomic_path, write_json  # noqa: E402
from lenet_mnist.jobs import run_seeds  # noqa: E402
from lenet_mnist.plot import long_history, save  # noqa: E402
from lenet_mnist.records import history_of, read_json, read_metrics  # noqa: E402
from lenet_mnist.sizes import run_size  # noqa: E402
from lenet_mnist.summarize import format_ci, format_diff, mean_ci  # noqa: E402

log = logging.getLogger(__name__)


def format_epochs(speed):
    if speed["reached"] < speed["of"]:
        return f"not reached by {speed['of'] - speed['reached']} of {speed['of']} seeds"
    return f"epoch {speed['median']:g}"


def format_epochs_cell(speed):
    """For a table cell: the median epoch, or how many seeds got there."""
    if speed["reached"] < speed["of"]:
        return f"{speed['reached']} of {speed['of']} seeds"
    return f"{speed['median']:g}"


def sign(stat):
    """What a paired interval allows one to say (summarize.verdict), in words."""
    if stat["verdict"] == "no effect":
        return f"no effect larger than {stat['half_width']:.4f}"
    return {"higher": "higher", "lower": "lower"}.get(stat["verdict"], "inconclusive")


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
    grid = sns.relplot(
        data=long,
        x="epoch",
        y="value",
        hue="run",
        row="split",
        col="metric",
        kind="line",
        errorbar=("ci", 95),
        seed=0,
        facet_kws={"sharey": "col"},
        height=3,
        aspect=1.4,
    )
    grid.set_titles(template="{row_name} {col_name}")
    for ax in grid.axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    grid.figure.suptitle(f"{study}: mean over each run's seeds, 95% CI", y=1.02)
    save(grid.figure, out_dir / f"{study}.png")
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
    """Draws the best run's confusion matrix, summed over seeds; its predictions, a row each, are
    in confusion.csv, as dvc's confusion template counts them."""
    best = summary["best"]["run"]
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


def differences(params, run, reference):
    """What a run changes from its reference, as 'key value against value'."""
    a, b = params["runs"][run], params["runs"][reference]
    return ", ".join(
        f"{key} {a[key]:g} against {b[key]:g}"
        if isinstance(a[key], (int, float))
        else f"{key} {a[key]} against {b[key]}"
        for key in a
        if a[key] != b[key]
    )


def decompositions(pairs):
    """Pairs (a, c) that the study also splits into (a, b) and (b, c): their mean differences add up."""
    found = []
    for a, c in pairs:
        for b in [r for x, r in pairs if x == a]:
            if (b, c) in pairs:
                found.append((a, b, c))
    return found


def describe_pairs(group):
    """Pairs that share what they are compared with: the one difference, or where their intervals lie."""
    if len(group) == 1:
        [c] = group
        return f"{c['run']} differs by {format_diff(c)}: {sign(c)}"
    sides = {
        side: [c for c in group if c["verdict"] == side] for side in ("higher", "lower", "no effect", "inconclusive")
    }
    words = {"no effect": "no effect larger than its interval's half-width"}
    return f"by their paired 95% intervals, of {len(group)} comparisons " + ", ".join(
        f"{len(cs)} {words.get(side, side)} ("
        + ", ".join(f"{c['run']} against {c['reference']} {format_diff(c)}" for c in cs)
        + ")"
        for side, cs in sides.items()
        if cs
    )


def pair_stats(summary, study, spec):
    """The study's comparisons by (run, reference), in the order of its pairs in params.yaml."""
    found = summary["comparisons"].get(study, {})
    return {(run, reference): found[f"{run}_vs_{reference}"] for run, reference in spec.get("pairs", [])}


def study_answer(params, summary, study, spec):
    """A sentence or two, from the metrics: the best run of a learning-curve study, or the ends of
    each curve of a data-size study without pairs; each difference the study splits in two; and the
    other pairs, by what they are compared with (the reference's model, optimizer and policy)."""
    stat = pair_stats(summary, study, spec)
    sentences = []
    if spec["figure"] == "learning_curves":
        runs = summary["runs"]
        best = max(spec["runs"], key=lambda run: runs[run]["test_accuracy"]["mean"])
        sentences.append(f"{best} has the best mean test accuracy, {format_ci(runs[best]['test_accuracy'])}.")
    elif not stat:
        table = size_table(params, summary, spec)
        ends = [
            f"{curve} {group['test_accuracy'].iloc[0]:.4f} at {group['n_train'].iloc[0]:,} images and "
            f"{group['test_accuracy'].iloc[-1]:.4f} at {group['n_train'].iloc[-1]:,}"
            for curve, group in table.groupby("curve", sort=False)
        ]
        sentences.append("Mean test accuracy: " + "; ".join(ends) + ".")
    chains = decompositions(list(stat))
    if chains:

        def share(x, total):
            return f"{stat[x]['mean']:+.4f} ({stat[x]['mean'] / total:.0%})" if total else f"{stat[x]['mean']:+.4f}"

        parts = [
            f"of {a} against {c}, {format_diff(stat[a, c])}, {share((a, b), stat[a, c]['mean'])} is {a} against "
            f"{b} ({differences(params, a, b)}) and {share((b, c), stat[a, c]['mean'])} is {b} against {c} "
            f"({differences(params, b, c)})"
            for a, b, c in chains
        ]
        sentences.append("Seed by seed, " + "; ".join(parts) + ".")
    in_chains = {pair for a, b, c in chains for pair in ((a, c), (a, b), (b, c))}
    groups = {}
    for (run, reference), c in stat.items():
        if (run, reference) not in in_chains:
            ref = params["runs"][reference]
            groups.setdefault(f"{ref['model']}, {ref['optimizer']}, policy {ref['policy']}", []).append(c)
    if groups:
        sentence = "; ".join(f"against {against}, {describe_pairs(group)}" for against, group in groups.items())
        sentences.append(sentence[0].upper() + sentence[1:] + ".")
    return " ".join(sentences)


def study_table(params, summary, study, spec):
    """A row per run of the study: its updates, test accuracy, speed, and its paired differences."""
    comparisons = pair_stats(summary, study, spec).values()
    rows = []
    for run in spec["runs"]:
        stats = summary["runs"][run]
        rows.append(
            {
                "run": run,
                "sgd_steps": f"{sgd_steps(params, run):,}",
                "test_accuracy": format_ci(stats["test_accuracy"]),
                "epochs_to_val_95": format_epochs_cell(stats["epochs_to_val_95"]),
                "epochs_to_val_98": format_epochs_cell(stats["epochs_to_val_98"]),
                "paired": "; ".join(
                    f"{format_diff(c)} against {c['reference']}" for c in comparisons if c["run"] == run
                ),
            }
        )
    return rows


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


def figures(params, summary_path, history_dir, metrics_dir, out_dir):
    """The study figures, their tables and the report's texts, written as a set."""
    with atomic_dir(out_dir, "figures") as staging:
        write_figures(params, summary_path, history_dir, metrics_dir, staging)


def write_figures(params, summary_path, history_dir, metrics_dir, out_dir):
    summary = read_json(summary_path, "a summary written by lenet-mnist summarize")
    captions, answers, curves, sizes = {}, [], [], []  # answers: a list, in the order of params.yaml
    for study, spec in params["studies"].items():
        if spec["figure"] == "learning_curves":
            curves.append(learning_curves(params, spec["runs"], history_dir, out_dir, study))
            captions[study] = describe_curves(summary, spec["runs"])
        else:
            sizes.append(data_size(params, summary, spec, out_dir, study))
            captions[study] = describe_sizes(sizes[-1])
        answers.append(
            {
                "study": study,
                "question": spec["question"],
                "answer": study_answer(params, summary, study, spec),
                "table": study_table(params, summary, study, spec),
            }
        )
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
        f"Confusion matrix of {best}, the run with the best mean test accuracy, summed over "
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
