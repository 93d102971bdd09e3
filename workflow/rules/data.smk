# Data: the raw files, the train/validation split, each seed's subsets and prepared training sets.


rule download:
    output:
        directory(RAW),
    log:
        "logs/download.log",
    benchmark:
        "benchmarks/snakemake/download.tsv"
    resources:
        **needs("download"),
    params:
        data=written("data"),
    shell:
        "lenet-mnist download --log {log} --out {output}"


rule split:
    input:
        code=fingerprint("split"),
        raw=ancient(RAW),
    output:
        train=update(SPLIT["train"]),  # kept while the job runs: KEPT in common.smk
        val=update(SPLIT["val"]),
    log:
        "logs/split.log",
    benchmark:
        "benchmarks/snakemake/split.tsv"
    resources:
        **needs("split"),
    params:
        split=written("split"),
    shell:
        "lenet-mnist split --log {log} --raw {input.raw} --train {output.train} --val {output.val}"


rule subsample:
    input:
        code=fingerprint("subsample"),
        raw=ancient(RAW),
        train=SPLIT["train"],
        val=SPLIT["val"],
    output:
        update(subset_path("{fraction}", "{seed}")),
    log:
        "logs/subsample/{fraction}/{seed}.log",
    benchmark:
        "benchmarks/snakemake/subsample/{fraction}/{seed}.tsv"
    resources:
        **needs("subsample"),
    shell:
        "lenet-mnist subsample --log {log} --fraction {wildcards.fraction} --seed {wildcards.seed}"
        " --raw {input.raw} --train {input.train} --val {input.val} --out {output}"


rule prepare:
    input:
        code=fingerprint("prepare"),
        raw=ancient(RAW),
        train=SPLIT["train"],
        subset=subset_path("{fraction}", "{seed}"),
    output:
        update(prepared_path("{policy}", "{fraction}", "{seed}")),
    log:
        "logs/prepare/{policy}/{fraction}/{seed}.log",
    benchmark:
        "benchmarks/snakemake/prepare/{policy}/{fraction}/{seed}.tsv"
    resources:
        **needs("prepare"),
    params:
        policy=lambda wildcards: written("policies", wildcards.policy),
    shell:
        "lenet-mnist prepare --log {log} --policy {wildcards.policy} --fraction {wildcards.fraction}"
        " --seed {wildcards.seed} --raw {input.raw} --train-split {input.train} --subset {input.subset}"
        " --out {output}"


rule preview:
    input:
        code=fingerprint("preview"),
        raw=ancient(RAW),
        trainset=preview_input,
    output:
        report(
            "results/previews/{policy}.png",
            caption="../report/preview.rst",
            category="Augmentation",
            labels={"policy": "{policy}"},
        ),
    log:
        "logs/preview/{policy}.log",
    benchmark:
        "benchmarks/snakemake/preview/{policy}.tsv"
    resources:
        **needs("preview"),
    shell:
        "lenet-mnist preview --log {log} --raw {input.raw} --trainset {input.trainset} --out {output}"
