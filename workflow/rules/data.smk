# Data: the raw files, the train/validation split, and the training subsets.


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
        code=code_inputs("split"),
        raw=ancient(RAW),
    output:
        train=SPLIT["train"],
        val=SPLIT["val"],
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
        code=code_inputs("subsample"),
        raw=ancient(RAW),
        train=SPLIT["train"],
    output:
        "data/subsets/{fraction}.npy",
    log:
        "logs/subsample/{fraction}.log",
    benchmark:
        "benchmarks/snakemake/subsample/{fraction}.tsv"
    resources:
        **needs("subsample"),
    params:
        seed=written("subsample", "seed"),
    shell:
        "lenet-mnist subsample --log {log} --fraction {wildcards.fraction} --raw {input.raw}"
        " --train {input.train} --out {output}"
