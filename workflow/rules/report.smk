# Results: the validation phase's sizing of the claims, every run's test metrics over its seeds
# and the claims judged, the learning curves, and a figure per study.

import json
import os

# For `snakemake --report`: the captions and answers that the figures stage computed from the
# metrics, so that the report's text states measured numbers; nothing before the first run.
if os.path.exists("results/figures/report.json"):
    with open("results/figures/report.json") as f:
        config["measured"] = json.load(f)
if os.path.exists("results/derivations.json"):
    with open("results/derivations.json") as f:
        config["derivations"] = json.load(f)


rule design:
    input:
        code=fingerprint("design"),
        histories=every_training("results/history/{run}/{seed}.csv"),  # as DVC's directory dep
        drift="benchmarks/drift.json",
    output:
        "results/design.json",
    log:
        "logs/design.log",
    benchmark:
        "benchmarks/snakemake/design.tsv"
    resources:
        **needs("design"),
    params:
        design=written("design"),
        runs=written("runs"),
        seeds=written("seeds"),
        studies=written("studies"),
    shell:
        "lenet-mnist design --log {log} --history-dir results/history --drift {input.drift} --out {output}"


rule summarize:
    input:
        code=fingerprint("summarize"),
        design="results/design.json",
        derivations="results/derivations.json",  # the checks, not the figures
        metrics=every_training("results/metrics/{run}/{seed}.json"),
        histories=every_training("results/history/{run}/{seed}.csv"),
    output:
        summary="results/summary.json",
        metrics="results/metrics.json",
    log:
        "logs/summarize.log",
    benchmark:
        "benchmarks/snakemake/summarize.tsv"
    resources:
        **needs("summarize"),
    params:
        runs=written("runs"),
        seeds=written("seeds"),
        studies=written("studies"),
    shell:
        "lenet-mnist summarize --log {log} --metrics-dir results/metrics --history-dir results/history"
        " --design {input.design} --derivations {input.derivations} --summary {output.summary} --metrics {output.metrics}"


rule plot:
    input:
        code=fingerprint("plot"),
        histories=run_files("results/history/{run}/{seed}.csv"),
    output:
        report(
            "results/plots/{run}.png",
            caption="../report/learning_curves.rst",
            category="Learning curves",
            labels={"run": "{run}"},
        ),
    log:
        "logs/plot/{run}.log",
    benchmark:
        "benchmarks/snakemake/plot/{run}.tsv"
    resources:
        **needs("plot"),
    shell:
        "lenet-mnist plot --log {log} --run {wildcards.run} --history-dir results/history/{wildcards.run}"
        " --out {output}"


rule figures:
    input:
        code=fingerprint("figures"),
        summary="results/summary.json",
        answers="workflow/report/answers.yaml",
        metrics=every_training("results/metrics/{run}/{seed}.json"),
        histories=every_training("results/history/{run}/{seed}.csv"),
    output:
        report(
            directory("results/figures"),
            patterns=["{figure}.png"],
            caption="../report/figure.rst",
            category="Figures",
        ),
    log:
        "logs/figures.log",
    benchmark:
        "benchmarks/snakemake/figures.tsv"
    resources:
        **needs("figures"),
    params:
        studies=written("studies"),
        runs=written("runs"),
        val_size=written("split", "val_size"),
        seeds=written("seeds"),
    shell:
        "lenet-mnist figures --log {log} --summary {input.summary} --answers {input.answers} --history-dir results/history"
        " --metrics-dir results/metrics --out-dir {output}"


rule derivations:
    input:
        code=fingerprint("derivations"),
        raw=ancient(RAW),
    output:
        checks="results/derivations.json",
        figures=report(
            directory("results/derivations"),
            patterns=["{figure}.png"],
            caption="../report/derivation.rst",
            category="Problem Sets 1-3",
        ),
    log:
        "logs/derivations.log",
    benchmark:
        "benchmarks/snakemake/derivations.tsv"
    resources:
        **needs("derivations"),
    params:
        derivations=written("derivations"),
    shell:
        "lenet-mnist derivations --log {log} --raw {input.raw} --checks {output.checks} --out-dir {output.figures}"
