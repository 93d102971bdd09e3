# Training and evaluation: a run's prepared inputs, then a training job per run (its seeds side by
# side, as one stacked model) and an evaluation job per run (each seed's checkpoint).


rule prepare:
    input:
        code=code_inputs("prepare"),
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
    log:
        "logs/prepare/{run}.log",
    benchmark:
        "benchmarks/snakemake/prepare/{run}.tsv"
    resources:
        **needs("prepare"),
    params:
        run=run_params,
        entries=run_entries,
    shell:
        "lenet-mnist prepare --log {log} --run {wildcards.run} --raw {input.raw} --train-split {input.train}"
        " --subset {input.subset} --trainset {output.trainset} --recipe {output.recipe} --preview {output.preview}"


rule train:
    input:
        code=code_inputs("train"),
        recipe="data/runs/{run}/recipe.json",
        trainset="data/runs/{run}/train.npz",
        raw=ancient(RAW),
        val=SPLIT["val"],
    output:
        # Directories, as dvc.yaml's outs (which cannot list the seeds): both tools clear them
        # before the job, so that a seed no longer in params.yaml leaves no checkpoint behind.
        checkpoints=directory("models/{run}"),
        histories=directory("results/history/{run}"),
    log:
        "logs/train/{run}.log",
    benchmark:
        "benchmarks/snakemake/train/{run}.tsv"
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
        compute=written("compute"),
        evaluate=written("evaluate"),
        seeds=SEEDS,
        threads=PARAMS["compute"]["threads"],
    shell:
        "lenet-mnist train --log {log} --recipe {input.recipe} --trainset {input.trainset}"
        " --raw {input.raw} --val-split {input.val}"
        " --checkpoints {output.checkpoints} --histories {output.histories} --threads {params.threads}"


rule evaluate:
    input:
        code=code_inputs("evaluate"),
        checkpoints="models/{run}",
        raw=ancient(RAW),
    output:
        directory("results/metrics/{run}"),
    log:
        "logs/evaluate/{run}.log",
    benchmark:
        "benchmarks/snakemake/evaluate/{run}.tsv"
    resources:
        **needs("evaluate"),
    params:
        evaluate=written("evaluate"),
        seeds=SEEDS,
    shell:
        "lenet-mnist evaluate --log {log} --checkpoints {input.checkpoints} --raw {input.raw} --out {output}"
