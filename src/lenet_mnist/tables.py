"""The tables of numbers in README.md and docs/, generated from the results, so that they cannot
drift from them: `lenet-mnist tables` rewrites every block between `<!-- table: NAME -->` and
`<!-- end table -->`; `lenet-mnist tables --check` (a test runs it) fails where a committed table
differs from what the results give.

- `results`: a row per study of params.yaml, its best run and test accuracy (results/metrics.json);
- `study STUDY`: the report's table of a study (results/figures/report.json);
- `rules`: time and peak memory per rule of the last `make bench-study` (benchmarks/study.json);
- `throughput`, `models`, `passes`, `targets`: the rates, models, multiply-add passes and speed
  targets of the last `make bench` (benchmarks/results.json);
- `scale`: planning time of both tools, this study and a generated one (benchmarks/scale.json).
"""

import json
import logging
import re
from pathlib import Path

from lenet_mnist.errors import LenetError
from lenet_mnist.files import write_bytes
from lenet_mnist.summarize import format_ci

log = logging.getLogger(__name__)

BLOCK = re.compile(r"(<!-- table: ([^>]+?) -->\n)(.*?)(<!-- end table -->)", re.S)
DOCUMENTS = ("README.md", "docs/results.md", "docs/speed.md")
STUDY_COLUMNS = {
    "run": "run",
    "sgd_steps": "SGD steps",
    "test_accuracy": "test accuracy, mean [95% CI]",
    "epochs_to_val_95": "epoch to 95% val.",
    "epochs_to_val_98": "epoch to 98% val.",
    "paired": "paired difference, mean [95% CI]",
}


def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows]) + "\n"


def results_table(root):
    summary = read_json(root / "results/metrics.json")
    answers = {answer["study"]: answer for answer in read_json(root / "results/figures/report.json")["answers"]}
    rows = []
    for study, stats in summary["studies"].items():
        best = max(stats, key=lambda run: stats[run]["mean"])
        rows.append((f"`{study}`", answers[study]["question"], f"`{best}`", format_ci(stats[best])))
    order = list(answers)
    rows.sort(key=lambda row: order.index(row[0].strip("`")))
    return markdown(["study", "question", "best run", "its test accuracy, mean [95% CI] over seeds"], rows)


def study_table(root, study):
    answers = {answer["study"]: answer for answer in read_json(root / "results/figures/report.json")["answers"]}
    if study not in answers:
        raise LenetError(f"results/figures/report.json: no study {study!r} (allowed: {', '.join(answers)})")
    rows = [[f"`{row['run']}`", *(row[key] for key in list(STUDY_COLUMNS)[1:])] for row in answers[study]["table"]]
    return markdown(list(STUDY_COLUMNS.values()), rows)


def rules_table(root):
    study = read_json(root / "benchmarks/study.json")
    rows = [
        (
            f"`{rule}`",
            stats["jobs"],
            f"{stats['total_s']:,.0f}",
            f"{stats['median_s']:.1f}",
            f"{stats['max_s']:.1f}",
            f"{stats['cpu_s']:,.0f}",
            f"{stats['max_rss_mb']:,.0f}",
        )
        for rule, stats in sorted(study["rules"].items(), key=lambda kv: -kv[1]["total_s"])
    ]
    return (
        f"{on_machine(study)}, wall time {study['wall_s'] / 60:.1f} min, "
        f"{study['training_samples']:,} training samples:\n\n"
        + markdown(["rule", "jobs", "total s", "median s", "max s", "CPU s", "peak RSS, MB"], rows)
    )


def on_machine(measured):
    machine = measured["machine"]
    return f"{machine['cpu']}, {machine['cpus']} CPUs, {machine['threads']} torch thread(s), {measured['when'][:10]}"


def ratio(spread):
    """A ratio's median over rounds, with its lowest and highest."""
    return f"{spread['median']:.2f}x ({spread['min']:.2f}-{spread['max']:.2f}x)"


def throughput_table(root):
    bench = read_json(root / "benchmarks/results.json")
    rows = [
        (
            kind,
            f"{bench[kind]['notebook_samples_per_s']:,.0f}",
            f"{bench[kind]['our_samples_per_s']:,.0f}",
            f"{bench[kind]['our_one_seed_samples_per_s']:,.0f}" if kind == "plain" else "",
            ratio(bench[kind]["ratio"]),
        )
        for kind in ("plain", "augmented")
    ]
    return (
        f"`benchmarks/results.json` ({on_machine(bench)}, medians of {bench['repeats']} rounds of fresh processes), "
        "samples/s:\n\n"
        + markdown(
            ["", "notebook's loop", f"ours, {bench['seeds']} seeds", "ours, one seed", "ratio (lowest-highest)"], rows
        )
    )


def models_table(root):
    bench = read_json(root / "benchmarks/results.json")
    rows = [
        (
            f"`{model}`",
            f"{rates['as_written_samples_per_s']:,.0f}",
            f"{rates['our_samples_per_s']:,.0f}",
            ratio(rates["ratio"]),
        )
        for model, rates in bench["models"].items()
    ]
    return markdown(
        ["model", "as `lenet()` writes it", f"{bench['seeds']} seeds as train runs them", "ratio (lowest-highest)"],
        rows,
    )


def passes_table(root):
    steps = read_json(root / "benchmarks/results.json")["multiply_adds"]
    rows = [
        (
            p["layer"],
            p["pass"],
            f"{p['flops'] / 1e6:,.0f}",
            f"{p['seconds'] * 1e3:.2f}",
            f"{p['flops_per_s'] / 1e9:.1f}",
            f"{p['fraction_of_matmul']:.0%}",
        )
        for p in steps["passes"]
    ]
    rows.append(("all", "", "", f"{steps['seconds_per_step'] * 1e3:.2f}", "", ""))
    rows.append(
        (
            "our step",
            ratio(steps["step_over_passes"]) + " the passes",
            "",
            f"{steps['our_step_seconds'] * 1e3:.2f}",
            "",
            "",
        )
    )
    return markdown(["layer", "pass", "MFLOP per step", "ms", "GFLOP/s", "of the matmul rate"], rows)


def targets_table(root):
    targets = read_json(root / "benchmarks/results.json")["targets"]
    names = {
        "plain": "ours against the notebook's loop, plain",
        "augmented": "ours against the notebook's loop, augmented",
        "step_over_multiply_adds": "our step against its multiply-add passes",
    }
    rows = [
        (
            names[name],
            f"{t['target']:.2f}x",
            f"{t['measured']:.2f}x",
            "met" if t["met"] else "not met",
            f"{t['rest_seconds_allowed'] * 1e3:.2f}",
            f"{t['rest_seconds_now'] * 1e3:.2f}",
        )
        for name, t in targets.items()
    ]
    return markdown(
        ["", "target", "measured (median)", "", "ms of a step it leaves for the rest", "ms the rest takes now"],
        rows,
    )


def scale_table(root):
    scale = read_json(root / "benchmarks/scale.json")
    rows = [
        (
            f"`{label}`" if label == "params.yaml" else label,
            f"{study['runs']:,}",
            f"{study['trained_models']:,}",
            f"{study['snakemake_dry_run_s']:.1f}",
            f"{study['dvc_status_s']:.1f}",
        )
        for label, study in scale.items()
        if isinstance(study, dict) and "runs" in study
    ]
    return f"`benchmarks/scale.json` ({on_machine(scale)}, {scale['statistic']}):\n\n" + markdown(
        ["study", "runs", "trained models", "`snakemake -n`, s", "`dvc status`, s"], rows
    )


def render(root, name):
    kind, *args = name.split()
    makers = {
        "results": results_table,
        "study": study_table,
        "rules": rules_table,
        "throughput": throughput_table,
        "models": models_table,
        "passes": passes_table,
        "targets": targets_table,
        "scale": scale_table,
    }
    if kind not in makers:
        raise LenetError(f"table {name!r}: unknown (allowed: {', '.join(makers)})")
    return makers[kind](root, *args)


def read_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise LenetError(f"{path}: cannot read the results ({e})") from None


def tables(root=Path("."), check=False):
    """Rewrite (or, with check, compare) every table block of the documents."""
    stale = []
    for name in DOCUMENTS:
        path = root / name
        text = path.read_text()
        new = BLOCK.sub(lambda m: m[1] + render(root, m[2]) + m[4], text)
        if new == text:
            continue
        if check:
            stale.append(name)
        else:
            write_bytes(path, new.encode())
            log.info("%s: tables rewritten", path)
    if stale:
        raise LenetError(f"{', '.join(stale)}: tables differ from the results; run lenet-mnist tables")
