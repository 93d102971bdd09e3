# Training and evaluation: a job per (run, seed), each drawing from its seed's own streams, so that
# adding a seed adds its jobs alone. On a cluster they go to the scheduler in bundles (the groups of
# workflow/profiles/slurm), not one 2-minute job at a time.


rule train:
    input:
        code=fingerprint("train"),
        trainset=run_trainset,
        raw=ancient(RAW),
        val=SPLIT["val"],
    output:
        checkpoint=update("models/{run}/{seed}.pt"),  # kept while the job runs: KEPT in common.smk
        history=update("results/history/{run}/{seed}.csv"),
    log:
        "logs/train/{run}/{seed}.log",
    benchmark:
        "benchmarks/snakemake/train/{run}/{seed}.tsv"
    priority: train_priority
    threads: train_job_cores
    resources:
        **needs(
            "train",
            runtime=train_runtime,
            cpus_per_task=PARAMS["compute"]["threads"],
            gpu=int(PARAMS["compute"]["device"] == "cuda"),
        ),
    params:
        run=run_params,
        compute=written("compute"),
        threads=PARAMS["compute"]["threads"],
    shell:
        "lenet-mnist train --log {log} --run {wildcards.run} --seed {wildcards.seed} --trainset {input.trainset}"
        " --raw {input.raw} --val-split {input.val} --checkpoint {output.checkpoint} --history {output.history}"
        " --threads {params.threads}"


rule evaluate:
    input:
        code=fingerprint("evaluate"),
        checkpoint="models/{run}/{seed}.pt",
        raw=ancient(RAW),
    output:
        update("results/metrics/{run}/{seed}.json"),
    log:
        "logs/evaluate/{run}/{seed}.log",
    benchmark:
        "benchmarks/snakemake/evaluate/{run}/{seed}.tsv"
    resources:
        **needs("evaluate"),
    params:
        evaluate=written("evaluate"),
    shell:
        "lenet-mnist evaluate --log {log} --run {wildcards.run} --seed {wildcards.seed}"
        " --checkpoint {input.checkpoint} --raw {input.raw} --out {output}"
