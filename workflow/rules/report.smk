# Results: every run's test metrics over its seeds, and the learning curves.


rule summarize:
    input:
        module("summarize"),
        metrics=[f"results/metrics/{run}/{seed}.json" for run, seed in JOBS],
    output:
        "results/metrics.json",
    params:
        runs=RUNS,
        seeds=SEEDS,
        studies=canonical(PARAMS["studies"]),
    log:
        "logs/summarize.log",
    shell:
        "lenet-mnist summarize --log {log} --metrics-dir results/metrics --out {output}"


rule plot:
    input:
        module("plot"),
        histories=expand("results/history/{{run}}/{seed}.csv", seed=SEEDS),
    output:
        report(
            "results/plots/{run}.png",
            caption="../report/learning_curves.rst",
            category="Learning curves",
            labels={"run": "{run}"},
        ),
    params:
        seeds=SEEDS,
    log:
        "logs/plot/{run}.log",
    shell:
        "lenet-mnist plot --log {log} --history-dir results/history/{wildcards.run} --out {output}"
