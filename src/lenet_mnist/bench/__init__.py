"""Benchmarks, not pipeline stages: `lenet-mnist bench` (throughput.py: a train job against the
notebook's loop, and each speed device of the train stage on and off), `bench-study` (study.py:
what a whole Snakemake run cost, rule by rule) and `bench-drift` (drift.py: jobs retrained with
AVX2's kernels, the drift that the design stage sizes claims with)."""
