"""Benchmarks, not pipeline stages: `lenet-mnist bench` (throughput.py: our training step against
the notebook's loop, pass by pass), `bench-study` (study.py: what a whole Snakemake run cost, rule
by rule) and `bench-scale` (scale.py: planning time of both tools for a large generated study)."""
