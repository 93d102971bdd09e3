# Training and evaluation: one job per run of params.yaml.


rule train:
    input:
        module("train"),
        module("model"),
        module("checkpoint"),
        raw=ancient(RAW),
        train=SPLIT["train"],
        val=SPLIT["val"],
        subset=run_subset,
    output:
        checkpoint="models/{run}.pt",
        history="results/history/{run}.csv",
    params:
        run=run_params,
        compute=canonical(PARAMS["compute"]),
        evaluate=canonical(PARAMS["evaluate"]),
    threads: PARAMS["compute"]["threads"]
    log:
        "logs/train/{run}.log",
    shell:
        "lenet-mnist train --log {log} --run {wildcards.run} --raw {input.raw}"
        " --train-split {input.train} --val-split {input.val} --subset {input.subset}"
        " --checkpoint {output.checkpoint} --history {output.history} --threads {threads}"


rule evaluate:
    input:
        module("evaluate"),
        checkpoint="models/{run}.pt",
        raw=ancient(RAW),
    output:
        "results/metrics/{run}.json",
    params:
        evaluate=canonical(PARAMS["evaluate"]),
    log:
        "logs/evaluate/{run}.log",
    shell:
        "lenet-mnist evaluate --log {log} --checkpoint {input.checkpoint} --raw {input.raw} --out {output}"
