# Training and evaluation: a run's prepared inputs, then one job per run and seed.


rule prepare:
    input:
        module("prepare"),
        module("augment"),
        raw=ancient(RAW),
        train=SPLIT["train"],
        subset=run_subset,
    output:
        trainset="data/runs/{run}/train.npz",
        recipe="data/runs/{run}/recipe.json",
        preview=report(
            "results/previews/{run}.png",
            caption="../report/preview.rst",
            category="Augmentation",
            labels={"run": "{run}"},
        ),
    params:
        run=run_params,
        entries=run_entries,
    log:
        "logs/prepare/{run}.log",
    benchmark:
        "benchmarks/snakemake/prepare/{run}.tsv",
    shell:
        "lenet-mnist prepare --log {log} --run {wildcards.run} --raw {input.raw} --train-split {input.train}"
        " --subset {input.subset} --trainset {output.trainset} --recipe {output.recipe} --preview {output.preview}"


rule train:
    input:
        module("train"),
        module("model"),
        module("checkpoint"),
        recipe="data/runs/{run}/recipe.json",
        trainset="data/runs/{run}/train.npz",
        raw=ancient(RAW),
        val=SPLIT["val"],
    output:
        checkpoint="models/{run}/{seed}.pt",
        history="results/history/{run}/{seed}.csv",
    params:
        compute=canonical(PARAMS["compute"]),
        evaluate=canonical(PARAMS["evaluate"]),
        threads=PARAMS["compute"]["threads"],
    threads: train_job_cores()
    log:
        "logs/train/{run}/{seed}.log",
    benchmark:
        "benchmarks/snakemake/train/{run}/{seed}.tsv",
    shell:
        "lenet-mnist train --log {log} --seed {wildcards.seed} --recipe {input.recipe} --trainset {input.trainset}"
        " --raw {input.raw} --val-split {input.val}"
        " --checkpoint {output.checkpoint} --history {output.history} --threads {params.threads}"


rule evaluate:
    input:
        module("evaluate"),
        module("model"),
        module("checkpoint"),
        checkpoint="models/{run}/{seed}.pt",
        raw=ancient(RAW),
    output:
        "results/metrics/{run}/{seed}.json",
    params:
        evaluate=canonical(PARAMS["evaluate"]),
    log:
        "logs/evaluate/{run}/{seed}.log",
    benchmark:
        "benchmarks/snakemake/evaluate/{run}/{seed}.tsv",
    shell:
        "lenet-mnist evaluate --log {log} --checkpoint {input.checkpoint} --raw {input.raw} --out {output}"
