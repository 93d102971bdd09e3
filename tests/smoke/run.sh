#!/usr/bin/env bash
# The smoke study (tests/smoke/params.yaml: a few hundred images, two seeds, one or two epochs),
# built by Snakemake in a throwaway copy of this checkout, so that no file of the checkout changes:
# `make smoke`, and the study that the end-to-end tests build. It runs this checkout's lenet-mnist
# (the .venv on PATH) and downloads MNIST into the copy (from the wheel cache once it is filled).
# Usage: tests/smoke/run.sh [DIR]   (default: a new temporary directory)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$(mktemp -d -t lenet-mnist-smoke.XXXXXX)}
mkdir -p "$dir"
# What a clone of the working tree holds after `make setup` (which writes DVC's offline plots page),
# less the default study's outputs and its dvc.lock.
{ git -C "$root" ls-files -z --cached --others --exclude-standard; printf '.dvc/plots/offline.html\0'; } \
  | grep -zv -e '^data/' -e '^models/' -e '^results/' -e '^logs/' -e '^dvc\.lock$' \
  | tar -c -C "$root" --null -T - --ignore-failed-read 2>/dev/null \
  | tar -x -C "$dir"
cp "$root/tests/smoke/params.yaml" "$dir/params.yaml"
cd "$dir"
git init -q -b main
git add -A
git -c user.name=smoke -c user.email=smoke@localhost commit -qm "the smoke study's params"
snakemake --cores 4
snakemake --report results/report.html
echo "smoke study built in $dir; its report: $dir/results/report.html"
