"""The tables of numbers in README.md and docs/, generated from the results, so that they cannot
drift from them: `lenet-mnist tables` rewrites every block between `<!-- table: NAME -->` and
`<!-- end table -->`; `lenet-mnist tables --check` (a test runs it) fails where a committed table
differs from what the results give.

- `results`: a row per study of params.yaml, its best run and test accuracy (results/summary.json);
- `study STUDY`, `answer STUDY`: the report's table and answer of a study (results/figures/report.json);
- `rules`: time and peak memory per rule of the last `make bench-study` (benchmarks/study.json);
- `budget`: its wall time, and a train job's rate against the notebook's loop (benchmarks/);
- `power`: each stated comparison's n, interval, verdict and the seeds its spread calls for
  (results/summary.json);
- `throughput`, `models`: the training rates of a train job against the notebook's loop, and
  per model, of the last `make bench` (benchmarks/results.json);
- `drift`: every run's test accuracy scored with this machine's kernels and AVX2's
  (benchmarks/drift.json);
- `scale`: planning time of both tools, this study and a generated one (benchmarks/scale.json).
"""

import logging
import re
from pathlib import Path

from lenet_mnist.errors import LenetError
from lenet_mnist.files import write_bytes
from lenet_mnist.records import read_json
from lenet_mnist.summarize import format_ci, format_diff

log = logging.getLogger(__name__)

BLOCK = re.compile(r"(<!-- table: ([^>]+?) -->\n)(.*?)(<!-- end table -->)", re.S)
DOCUMENTS = ("README.md", "docs/results.md", "docs/speed.md")
STUDY_COLUMNS = {
    "run": "run",
    "sgd_steps": "SGD steps",
    "test_accuracy": "test accuracy, mean [95% CI] (n)",
    "epochs_to_val_95": "epoch to 95% val.",
    "epochs_to_val_98": "epoch to 98% val.",
    "paired": "paired difference, mean [95% CI] (n)",
}


def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows]) + "\n"


def results_table(root):
    """A row per study: its best run's test accuracy, and the same checkpoints scored with AVX2's
    kernels (benchmarks/drift.json), the drift a machine type alone brings."""
    summary = read_json(root / "results/summary.json", "the results")
    answers = {
        answer["study"]: answer for answer in read_json(root / "results/figures/report.json", "the results")["answers"]
    }
    drift = read_json(root / "benchmarks/drift.json", "the results")["runs"]
    rows = []
    for study, stats in summary["studies"].items():
        best = max(stats, key=lambda run: stats[run]["mean"])
        rows.append(
            (
                f"`{study}`",
                answers[study]["question"],
                f"`{best}`",
                format_ci(stats[best]),
                format_ci(drift[best]["avx2"]),
            )
        )
    order = list(answers)
    rows.sort(key=lambda row: order.index(row[0].strip("`")))
    return markdown(
        [
            "study",
            "question",
            "best run",
            "its test accuracy, mean [95% CI] (n seeds)",
            "the same checkpoints, AVX2 kernels",
        ],
        rows,
    )


def study_table(root, study):
    answers = {
        answer["study"]: answer for answer in read_json(root / "results/figures/report.json", "the results")["answers"]
    }
    if study not in answers:
        raise LenetError(f"results/figures/report.json: no study {study!r} (allowed: {', '.join(answers)})")
    rows = [[f"`{row['run']}`", *(row[key] for key in list(STUDY_COLUMNS)[1:])] for row in answers[study]["table"]]
    return markdown(list(STUDY_COLUMNS.values()), rows)


def answer_table(root, study):
    """Not a table: a study's answer, the sentences that the figures stage computed from the metrics."""
    answers = {
        answer["study"]: answer for answer in read_json(root / "results/figures/report.json", "the results")["answers"]
    }
    if study not in answers:
        raise LenetError(f"results/figures/report.json: no study {study!r} (allowed: {', '.join(answers)})")
    return answers[study]["answer"] + "\n"


def rules_table(root):
    study = read_json(root / "benchmarks/study.json", "the results")
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


def budget_table(root):
    """Not a table: the default study's wall time and the per-seed training rate against the
    notebook's, each with the machine it was measured on."""
    study, bench = (
        read_json(root / "benchmarks/study.json", "the results"),
        read_json(root / "benchmarks/results.json", "the results"),
    )
    jobs = study["rules"]["train"]["jobs"]
    plain = bench["plain"]
    minutes, seconds = divmod(round(study["wall_s"]), 60)
    return (
        f"The default study, {jobs} training jobs, rebuilt from scratch by `make bench-study` with "
        f"`snakemake --cores 4`: {minutes} min {seconds} s on "
        f"{on_machine(study)}. A train job (one seed, one torch thread) trains "
        f"{plain['our_samples_per_s']:,.0f} samples/s per core, {ratio(plain['ratio'])} the notebook's loop in the "
        f"same `make bench` run ({on_machine(bench)}).\n"
    )


def on_machine(measured):
    """The CPU, its ISA (which decides oneDNN's and MKL's kernels), the threads and the libraries."""
    machine = measured["machine"]
    isa = ", ".join(machine.get("isa") or []) or "ISA not recorded"
    libraries = ", ".join(
        f"{name} {machine[key]}"
        for name, key in (("torch", "torch"), ("oneDNN", "onednn"), ("MKL", "mkl"))
        if machine.get(key)
    )
    return (
        f"{machine['cpu']} ({isa}), {machine['cpus']} CPUs, {machine['threads']} torch thread(s), {libraries}, "
        f"{measured['when'][:10]}"
    )


def ratio(spread):
    """A ratio's median over rounds, with its lowest and highest."""
    return f"{spread['median']:.2f}x ({spread['min']:.2f}-{spread['max']:.2f}x)"


def throughput_table(root):
    bench = read_json(root / "benchmarks/results.json", "the results")
    rows = [
        (
            kind,
            f"{bench[kind]['notebook_samples_per_s']:,.0f}",
            f"{bench[kind]['our_samples_per_s']:,.0f}",
            ratio(bench[kind]["ratio"]),
        )
        for kind in ("plain", "augmented")
    ]
    vmap = bench["vmap"]
    rows.append(
        (
            f"plain, {vmap['seeds']} seeds in one vmapped step",
            "",
            f"{vmap['samples_per_s']:,.0f}",
            ratio(vmap["ratio_to_ours"])
            + " of a train job; "
            + ("bit-identical" if vmap["bit_identical_beside_other_seeds"] else "not bit-identical")
            + " beside other seeds",
        )
    )
    return (
        f"`benchmarks/results.json` ({on_machine(bench)}; medians of {bench['repeats']} rounds of fresh "
        "processes), training samples/s per core:\n\n"
        + markdown(["", "notebook's loop", "a train job (one seed)", "ratio (lowest-highest)"], rows)
    )


def models_table(root):
    bench = read_json(root / "benchmarks/results.json", "the results")
    rows = [
        (
            f"`{model}`",
            f"{rates['as_written_samples_per_s']:,.0f}",
            f"{rates['our_samples_per_s']:,.0f}",
            ratio(rates["ratio"]),
        )
        for model, rates in bench["models"].items()
    ]
    return markdown(["model", "as `lenet()` writes it", "as a train job builds it", "ratio (lowest-highest)"], rows)


def power_table(root):
    """Each stated comparison's n, interval and verdict, and the seeds its measured spread calls for."""
    comparisons = read_json(root / "results/summary.json", "the results")["comparisons"]
    rows = [
        (
            f"`{study}`",
            f"`{c['run']}` - `{c['reference']}`",
            c["n"],
            format_diff(c),
            f"{c['sd']:.4f}" if c["sd"] is not None else "",
            c["verdict"],
            c["seeds_for_power"] or "",
            c["seeds_for_resolution"] or "",
        )
        for study, pairs in comparisons.items()
        for c in pairs.values()
    ]
    return markdown(
        [
            "study",
            "difference",
            "n",
            "mean [95% CI]",
            "sd of the differences",
            "verdict",
            "seeds for 80% power at this mean",
            "seeds for +-0.001",
        ],
        rows,
    )


def drift_table(root):
    """The headline runs' test accuracy scored with this machine's kernels and with AVX2's."""
    drift = read_json(root / "benchmarks/drift.json", "the results")
    rows = [
        (
            f"`{run}`",
            format_ci(stats["native"]),
            format_ci(stats["avx2"]),
            f"{stats['avx2']['mean'] - stats['native']['mean']:+.5f}",
            f"{stats['max_seed_difference']:.5f}",
        )
        for run, stats in drift["runs"].items()
    ]
    kernels = drift["kernels"]
    return (
        f"`benchmarks/drift.json` ({on_machine(drift)}; ATen's CPU capability "
        + " against ".join(f"{libraries['aten_cpu_capability']}" for libraries in kernels.values())
        + "):\n\n"
        + markdown(
            ["run", "this machine's kernels", "AVX2 kernels", "difference of the means", "largest seed difference"],
            rows,
        )
    )


def scale_table(root):
    scale = read_json(root / "benchmarks/scale.json", "the results")
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
        "answer": answer_table,
        "rules": rules_table,
        "budget": budget_table,
        "throughput": throughput_table,
        "models": models_table,
        "power": power_table,
        "scale": scale_table,
        "drift": drift_table,
    }
    if kind not in makers:
        raise LenetError(f"table {name!r}: unknown (allowed: {', '.join(makers)})")
    return makers[kind](root, *args)


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
