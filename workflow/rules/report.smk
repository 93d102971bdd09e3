# Results: the summary of every run's test metrics and the learning curves.


rule summarize:
    input:
        module("summarize"),
        metrics=expand("results/metrics/{run}.json", run=RUNS),
    output:
        "results/metrics.json",
    params:
        runs=RUNS,
    log:
        "logs/summarize.log",
    shell:
        "lenet-mnist summarize --log {log} --metrics-dir results/metrics --out {output}"


rule plot:
    input:
        module("plot"),
        history="results/history/{run}.csv",
    output:
        report(
            "results/plots/{run}.png",
            caption="../report/learning_curves.rst",
            category="Learning curves",
            labels={"run": "{run}"},
        ),
    log:
        "logs/plot/{run}.log",
    shell:
        "lenet-mnist plot --log {log} --history {input.history} --out {output}"
