"""The tables of numbers in README.md and docs/, generated from the results, so that they cannot
drift from them: `lenet-mnist tables` rewrites every block between `<!-- table: NAME -->` and
`<!-- end table -->`; `lenet-mnist tables --check` (a test runs it) fails where a committed table
differs from what the results give.

- `results`: a row per study of params.yaml, its run with the highest mean test accuracy, whether a
  paired claim resolved it, and its claims' verdicts (results/summary.json);
- `study STUDY`, `answer STUDY`, `claims STUDY`: the report's table of runs, answer and table of
  claims of a study (results/figures/report.json);
- `design`: what the validation phase showed of each claim, and the seeds it needs
  (results/design.json);
- `per_class STUDY`: each test-accuracy claim's paired difference per digit (results/summary.json);
- `verdicts`: each claim of the studies retrained with AVX2's kernels, judged again
  (benchmarks/verdicts.json);
- `rules`: time and peak memory per rule of the last `make bench-study` (benchmarks/study.json);
- `budget`: its wall time, and a train job's rate against the notebook's loop (benchmarks/);
- `throughput`, `models`: the training rates of a train job against the notebook's loop, and
  per model, of the last `make bench` (benchmarks/results.json);
- `drift`: the jobs retrained with AVX2's kernels, how far each moved (benchmarks/drift.json);
"""

import logging
import re
from pathlib import Path

from lenet_mnist.errors import LenetError
from lenet_mnist.files import write_bytes
from lenet_mnist.formats import claim_line, digits_of, format_ci, format_diff
from lenet_mnist.records import read_json

log = logging.getLogger(__name__)

BLOCK = re.compile(r"(<!-- table: ([^>]+?) -->\n)(.*?)(<!-- end table -->)", re.S)
DOCUMENTS = ("README.md", "docs/results.md", "docs/speed.md")
STUDY_COLUMNS = {
    "run": "run",
    "sgd_steps": "SGD steps",
    "test_accuracy": "test accuracy, mean [95% CI] (n)",
    "epochs_to_val_95": "epoch to 95% val.",
    "epochs_to_val_98": "epoch to 98% val.",
}
CLAIM_COLUMNS = {
    "claim": "claim",
    "expect": "expected",
    "phase": "phase",
    "seeds_needed": "seeds needed",
    "power": "power at n",
    "difference": "difference, mean [95% CI] (n)",
    "p": "p",
    "p_holm": "p, Holm",
    "verdict": "verdict",
}


def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows]) + "\n"


def report_answers(root):
    found = read_json(root / "results/figures/report.json", "the results")["answers"]
    return {answer["study"]: answer for answer in found}


def results_table(root):
    """A row per study: the run with the highest mean test accuracy, whether a paired claim
    resolved it from the runner-up, and how its claims came out."""
    summary = read_json(root / "results/summary.json", "the results")
    answers = report_answers(root)
    rows = []
    for study, answer in answers.items():
        ranked = summary["studies"][study]
        top = ranked["highest_mean"]
        verdicts = [c["verdict"] for c in summary["claims"].get(study, {}).values()]
        rows.append(
            (
                f"`{study}`",
                answer["question"],
                f"`{top}`" + ("" if ranked["resolved_by"] or not ranked["runner_up"] else " (not resolved)"),
                format_ci(summary["runs"][top]["test_accuracy"]),
                ", ".join(f"{verdicts.count(v)} {v}" for v in dict.fromkeys(verdicts)) or "none stated",
            )
        )
    return markdown(["study", "question", "highest mean", "its test accuracy, mean [95% CI] (n seeds)", "claims"], rows)


def study_answer(root, study):
    answers = report_answers(root)
    if study not in answers:
        raise LenetError(f"results/figures/report.json: no study {study!r} (allowed: {', '.join(answers)})")
    return answers[study]


def study_table(root, study):
    rows = [
        [f"`{row['run']}`", *(row[key] for key in list(STUDY_COLUMNS)[1:])]
        for row in study_answer(root, study)["table"]
    ]
    return markdown(list(STUDY_COLUMNS.values()), rows)


def claims_table(root, study):
    rows = [[row[key] for key in CLAIM_COLUMNS] for row in study_answer(root, study)["claims"]]
    return markdown(list(CLAIM_COLUMNS.values()), rows) if rows else "No claims.\n"


def answer_table(root, study):
    """Not a table: a study's answer, its hand-written sentences with measured numbers, and its ranking."""
    answer = study_answer(root, study)
    return "\n\n".join(text for text in (answer["answer"], answer["ranking"]) if text) + "\n"


def design_table(root):
    """Per claim, what the validation phase showed (the pilot's paired difference, its sd, the
    drift of one retrain), the sd that sized it, the seeds it needs and has, and its phase."""
    design = read_json(root / "results/design.json", "the results")
    rows = []
    for study, claims in design["claims"].items():
        for c in claims.values():
            digits = digits_of(c)
            rows.append(
                (
                    f"`{study}`",
                    claim_line(c),
                    format_diff(c["pilot"], digits),
                    f"{c['pilot']['sd']:.{digits}f}",
                    f"{c['drift']:.{digits}f}",
                    f"{c['planned_sd']:.{digits}f}",
                    c["seeds_needed"] or f"> {design['max_seeds']}",
                    c["seeds"],
                    f"{c['power']:.2f}",
                    c["phase"],
                )
            )
    return (
        f"`results/design.json`: pilot seeds 0 to {design['pilot_seeds'] - 1}, power {design['power']}, at most "
        f"{design['max_seeds']} seeds; drift from {len(design['drift']['jobs'])} jobs retrained with AVX2's kernels "
        f"({on_machine(design['drift'])}).\n\n"
        + markdown(
            [
                "study",
                "claim",
                "validation phase: difference [95% CI] (n)",
                "its sd",
                "drift of a retrain",
                "sd that sizes it",
                "seeds needed",
                "seeds",
                "power at that n",
                "phase",
            ],
            rows,
        )
    )


def per_class_table(root, study):
    """Each test-accuracy claim's paired difference per digit (mean over the claim's seeds)."""
    claims = read_json(root / "results/summary.json", "the results")["claims"].get(study, {})
    rows = [
        (f"`{c['run']}` - `{c['reference']}`", *(f"{c['per_class'][str(k)]['mean']:+.4f}" for k in range(10)))
        for c in claims.values()
        if "per_class" in c
    ]
    return markdown(["claim", *map(str, range(10))], rows)


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
    """Per model: as written against as a train job builds it, and each speed device's on/off ratio
    (a train job against the same job without it; blank where the device does not apply)."""
    bench = read_json(root / "benchmarks/results.json", "the results")
    devices = list(dict.fromkeys(d for rates in bench["models"].values() for d in rates.get("devices", {})))
    rows = [
        (
            f"`{model}`",
            f"{rates['as_written_samples_per_s']:,.0f}",
            f"{rates['our_samples_per_s']:,.0f}",
            ratio(rates["ratio"]),
            *(ratio(rates["devices"][d]) if d in rates.get("devices", {}) else "" for d in devices),
        )
        for model, rates in bench["models"].items()
    ]
    header = ["model", "as `lenet()` writes it", "as a train job builds it", "ratio (lowest-highest)"]
    return markdown(header + [f"on/off: {d.replace('_', ' ')}" for d in devices], rows)


def drift_table(root):
    """How far a retrain with AVX2's kernels moved each job of the validation phase's measure."""
    drift = read_json(root / "benchmarks/drift.json", "the results")
    rows = []
    for job, histories in drift["jobs"].items():
        native, avx2 = histories["native"], histories["avx2"]
        rows.append(
            (
                f"`{job}`",
                f"{native[-1]['val_accuracy']:.4f}",
                f"{avx2[-1]['val_accuracy'] - native[-1]['val_accuracy']:+.4f}",
                f"{native[0]['train_loss']:.4f}",
                f"{avx2[0]['train_loss'] - native[0]['train_loss']:+.5f}",
                f"{native[-1]['train_loss']:.4f}",
                f"{avx2[-1]['train_loss'] - native[-1]['train_loss']:+.5f}",
            )
        )
    return (
        f"`benchmarks/drift.json` ({on_machine(drift)}; the AVX2 retrains against this checkout's results):\n\n"
        + markdown(
            [
                "run/seed",
                "final validation accuracy",
                "AVX2 retrain, difference",
                "training loss, epoch 1",
                "difference",
                "training loss, last epoch",
                "difference",
            ],
            rows,
        )
    )


def verdicts_table(root):
    """Each claim judged from this checkout's results and again from AVX2 retrains of its jobs."""
    found = read_json(root / "benchmarks/verdicts.json", "the results")
    rows = [
        (
            f"`{study}`",
            f"`{name}`",
            format_diff(v["native"]),
            v["native"]["verdict"],
            format_diff(v["avx2"]),
            v["avx2"]["verdict"],
            "yes" if v["kept"] else "**no**",
        )
        for study, claims in found["studies"].items()
        for name, v in claims.items()
    ]
    return f"`benchmarks/verdicts.json` ({on_machine(found)}):\n\n" + markdown(
        ["study", "claim", "this checkout", "verdict", "AVX2 retrain", "verdict", "kept"], rows
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
        "claims": claims_table,
        "design": design_table,
        "per_class": per_class_table,
        "verdicts": verdicts_table,
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
