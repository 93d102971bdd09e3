# Results: every run's test metrics over its seeds, the learning curves, and a figure per study.


rule summarize:
    input:
        code=code_inputs("summarize"),
        derivations="results/derivations",
        metrics=expand("results/metrics/{run}", run=RUNS),
        histories=expand("results/history/{run}", run=RUNS),
    output:
        "results/metrics.json",
    params:
        runs=RUNS,
        seeds=SEEDS,
        studies=written("studies"),
    resources:
        **needs("summarize"),
    log:
        "logs/summarize.log",
    benchmark:
        "benchmarks/snakemake/summarize.tsv",
    shell:
        "lenet-mnist summarize --log {log} --metrics-dir results/metrics --history-dir results/history"
        " --derivations {input.derivations}/checks.json --out {output}"


rule plot:
    input:
        code=code_inputs("plot"),
        histories="results/history/{run}",
    output:
        report(
            "results/plots/{run}.png",
            caption="../report/learning_curves.rst",
            category="Learning curves",
            labels={"run": "{run}"},
        ),
    params:
        seeds=SEEDS,
    resources:
        **needs("plot"),
    log:
        "logs/plot/{run}.log",
    benchmark:
        "benchmarks/snakemake/plot/{run}.tsv",
    shell:
        "lenet-mnist plot --log {log} --history-dir {input.histories} --out {output}"


rule figures:
    input:
        code=code_inputs("figures"),
        summary="results/metrics.json",
        metrics=expand("results/metrics/{run}", run=RUNS),
        histories=expand("results/history/{run}", run=RUNS),
    output:
        report(
            directory("results/figures"),
            patterns=["{figure}.png"],
            caption="../report/figure.rst",
            category="Figures",
        ),
    params:
        studies=written("studies"),
        runs=written("runs"),
        val_size=written("split", "val_size"),
        seeds=SEEDS,
    resources:
        **needs("figures"),
    log:
        "logs/figures.log",
    benchmark:
        "benchmarks/snakemake/figures.tsv",
    shell:
        "lenet-mnist figures --log {log} --summary {input.summary} --history-dir results/history"
        " --metrics-dir results/metrics --out-dir {output}"


rule derivations:
    input:
        code=code_inputs("derivations"),
        raw=ancient(RAW),
    output:
        report(
            directory("results/derivations"),
            patterns=["{figure}.png"],
            caption="../report/derivation.rst",
            category="Problem Sets 1-3",
        ),
    params:
        derivations=written("derivations"),
    resources:
        **needs("derivations"),
    log:
        "logs/derivations.log",
    benchmark:
        "benchmarks/snakemake/derivations.tsv",
    shell:
        "lenet-mnist derivations --log {log} --raw {input.raw} --out-dir {output}"
