"""Stage `figures`: one figure per study and the best run's confusion matrix, each with a caption
that states its measured numbers, plus a short answer to each study's question, all computed here
from the metrics (report.json); and the data behind the figures as CSV, for `dvc plots`:
curves.csv (learning curves), sizes.csv (accuracy against training-set size), confusion.csv."""

import json
import logging

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines that run the pipeline

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from lenet_mnist.files import atomic_path, write_json  # noqa: E402
from lenet_mnist.plot import long_history  # noqa: E402
from lenet_mnist.subsample import subset_size  # noqa: E402
from lenet_mnist.summarize import mean_ci  # noqa: E402

log = logging.getLogger(__name__)


def fmt(stat):
    """'0.9912 [0.9890, 0.9934]': a mean and its 95% CI over seeds."""
    if stat["ci95_low"] is None:
        return f"{stat['mean']:.4f} (1 seed)"
    return f"{stat['mean']:.4f} [{stat['ci95_low']:.4f}, {stat['ci95_high']:.4f}]"


def fmt_epochs(speed):
    if speed["reached"] < speed["of"]:
        return f"not reached by {speed['of'] - speed['reached']} of {speed['of']} seeds"
    return f"epoch {speed['median']:g}"


def save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def save_csv(frame, path):
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def learning_curves(params, runs, history_dir, out_dir, study):
    """Draws a study's learning curves; returns their means over seeds, a row per run and epoch."""
    history = pd.concat([pd.read_csv(history_dir / run / f"{seed}.csv").assign(run=run, seed=seed)
                         for run in runs for seed in params["seeds"]], ignore_index=True)
    long = long_history(history, ids=("epoch", "run", "seed"))
    grid = sns.relplot(data=long, x="epoch", y="value", hue="run", row="split", col="metric", kind="line",
                       errorbar=("ci", 95), seed=0, facet_kws={"sharey": "col"}, height=3, aspect=1.4)
    grid.set_titles(template="{row_name} {col_name}")
    for ax in grid.axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    grid.figure.suptitle(f"{study}: mean over {len(params['seeds'])} seeds, 95% CI", y=1.02)
    save(grid.figure, out_dir / f"{study}.png")
    means = history.drop(columns="seed").groupby(["run", "epoch"], sort=False).mean().reset_index()
    return means.assign(study=study)


def size_table(params, summary, runs):
    n_train = 60_000 - params["split"]["val_size"]
    rows = []
    for run in runs:
        spec, stat = params["runs"][run], summary["runs"][run]["test_accuracy"]
        rows.append({"run": run, "policy": spec["policy"], "fraction": spec["fraction"],
                     "n_train": subset_size(spec["fraction"], n_train), "test_accuracy": stat["mean"],
                     "ci95_low": stat["ci95_low"], "ci95_high": stat["ci95_high"]})
    return pd.DataFrame(rows).sort_values(["policy", "n_train"])


def data_size(params, summary, runs, out_dir, study):
    table = size_table(params, summary, runs)
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=table, x="n_train", y="test_accuracy", hue="policy", marker="o", errorbar=None, ax=ax)
    for (policy, group), color in zip(table.groupby("policy", sort=False), sns.color_palette()):
        if group["ci95_low"].notna().all():
            ax.fill_between(group["n_train"], group["ci95_low"], group["ci95_high"], alpha=0.2, color=color)
    ax.set(xlabel="training images", ylabel="test accuracy",
           title=f"{study}: mean over {len(params['seeds'])} seeds, 95% CI")
    save(fig, out_dir / f"{study}.png")
    return table.assign(study=study)


def confusion(params, summary, metrics_dir, out_dir):
    """Draws the best run's confusion matrix, summed over seeds; its predictions, a row each, are
    in confusion.csv, as dvc's confusion template counts them."""
    best = max(summary["runs"], key=lambda run: summary["runs"][run]["test_accuracy"]["mean"])
    matrices = {seed: np.array(json.loads((metrics_dir / best / f"{seed}.json").read_text())["confusion_matrix"])
                for seed in params["seeds"]}
    actual, predicted = np.indices((10, 10)).reshape(2, -1)
    save_csv(pd.concat([pd.DataFrame({"seed": seed, "actual": np.repeat(actual, matrix.ravel()),
                                      "predicted": np.repeat(predicted, matrix.ravel())})
                        for seed, matrix in matrices.items()]), out_dir / "confusion.csv")
    total = sum(matrices.values())
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    sns.heatmap(total, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax, annot_kws={"fontsize": 7})
    ax.set(xlabel="predicted", ylabel="actual", title=f"{best}: test set, summed over {len(params['seeds'])} seeds")
    save(fig, out_dir / "confusion.png")
    off = total.copy()
    off[range(10), range(10)] = 0
    worst = divmod(int(off.argmax()), 10)
    return best, int(off.sum()), worst, int(off.max())


def describe_curves(summary, runs):
    """Caption and answer of a learning-curve study: each run's test accuracy and speed, best first."""
    stats = {run: summary["runs"][run] for run in runs}
    ranked = sorted(runs, key=lambda run: -stats[run]["test_accuracy"]["mean"])
    lines = [f"{run}: test accuracy {fmt(stats[run]['test_accuracy'])}, 95% validation accuracy "
             f"{fmt_epochs(stats[run]['epochs_to_val_95'])}, 98% {fmt_epochs(stats[run]['epochs_to_val_98'])}"
             for run in ranked]
    caption = "Learning curves, mean over seeds with 95% CI bands. " + "; ".join(lines) + "."
    first, best = runs[0], ranked[0]
    answer = f"{best} has the best mean test accuracy, {fmt(stats[best]['test_accuracy'])}"
    if best != first:
        answer += f", against {fmt(stats[first]['test_accuracy'])} for {first}"
    return caption, answer + ". " + "; ".join(lines) + "."


def describe_sizes(table):
    """Caption and answer of a data-size study: accuracy by size, and each policy against none."""
    by_policy = {policy: group.set_index("n_train") for policy, group in table.groupby("policy", sort=False)}
    lines = [f"{policy}: " + ", ".join(f"{n:,} images {row.test_accuracy:.4f} [{row.ci95_low:.4f}, "
                                       f"{row.ci95_high:.4f}]" for n, row in group.iterrows())
             for policy, group in by_policy.items()]
    caption = "Test accuracy against training-set size, mean over seeds with 95% CI. " + "; ".join(lines) + "."
    answer = "; ".join(lines) + "."
    if "none" in by_policy:
        base = by_policy["none"]
        for policy, group in by_policy.items():
            if policy == "none":
                continue
            shared = group.index.intersection(base.index)
            gains = [f"{group.loc[n, 'test_accuracy'] - base.loc[n, 'test_accuracy']:+.4f} at {n:,}" for n in shared]
            answer += f" {policy} against none: {', '.join(gains)}."
    return caption, answer


def seed_comparison(params, summary, history_dir):
    """Each number the seed printed beside ours for the same run: its test accuracy, or the
    validation accuracy after the last epoch, as means over our seeds."""
    rows = []
    for study, spec in params["studies"].items():
        for run, reported in spec.get("seed_reported", {}).items():
            for metric, value in reported.items():
                if metric == "test_accuracy":
                    ours = summary["runs"][run]["test_accuracy"]
                else:
                    ours = mean_ci([float(pd.read_csv(history_dir / run / f"{seed}.csv")["val_accuracy"].iloc[-1])
                                    for seed in params["seeds"]])
                rows.append({"study": study, "run": run, "metric": metric, "seed": f"{value:.4f}", "ours": fmt(ours)})
    return rows


def figures(params, summary_path, history_dir, metrics_dir, out_dir):
    summary = json.loads(summary_path.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    captions, answers, curves, sizes = {}, {}, [], []
    for study, spec in params["studies"].items():
        if spec["figure"] == "learning_curves":
            curves.append(learning_curves(params, spec["runs"], history_dir, out_dir, study))
            captions[study], answer = describe_curves(summary, spec["runs"])
        else:
            sizes.append(data_size(params, summary, spec["runs"], out_dir, study))
            captions[study], answer = describe_sizes(sizes[-1])
        answers[study] = {"question": spec["question"], "answer": answer}
    # The data behind the study figures, a row per study, run and epoch or size, for `dvc plots`.
    for name, frames in (("curves", curves), ("sizes", sizes)):
        if frames:
            table = pd.concat(frames, ignore_index=True)
            save_csv(table[["study", *table.columns.drop("study")]], out_dir / f"{name}.csv")
    for run, stats in summary["runs"].items():  # the per-run learning curves of the plot stage
        captions[f"run {run}"] = (f"Learning curves of run {run}, mean over seeds with 95% CI bands: test accuracy "
                                  f"{fmt(stats['test_accuracy'])}, 95% validation accuracy "
                                  f"{fmt_epochs(stats['epochs_to_val_95'])}, 98% {fmt_epochs(stats['epochs_to_val_98'])}.")
    best, errors, (actual, predicted), count = confusion(params, summary, metrics_dir, out_dir)
    n = len(params["seeds"]) * 10_000
    captions["confusion"] = (f"Confusion matrix of {best}, the run with the best mean test accuracy, summed over "
                             f"{len(params['seeds'])} seeds: {errors} errors in {n:,} predictions; the most frequent "
                             f"is a {actual} taken for a {predicted} ({count} times).")
    write_json(out_dir / "report.json", {"captions": captions, "answers": answers,
                                         "seed_comparison": seed_comparison(params, summary, history_dir)})
    log.info("%d study figures and the confusion matrix of %s -> %s", len(params["studies"]), best, out_dir)
