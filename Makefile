# `make run` and `make test` do all set-up themselves; a second call skips what is installed.
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PLOTS_PAGE := .dvc/plots/offline.html
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup run smoke test test-fast test-cluster lint tables bench bench-study bench-drift bench-verdicts lock clean

setup: $(INSTALLED) $(PLOTS_PAGE)

# Reinstalled only when the pins or the package metadata change.
$(INSTALLED): requirements.lock pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# `dvc plots show` and `diff` offline: DVC's page (.dvc/plots/page.html) with the vega, vega-lite
# and vega-embed that Snakemake's report ships inlined where DVC would link a CDN; .dvc/config
# names it as plots.html_template.
$(PLOTS_PAGE): .dvc/plots/page.html $(INSTALLED)
	$(BIN)/python -c 'import pathlib, sys, snakemake; \
	  data = pathlib.Path(snakemake.__file__).parent / "assets" / "data"; \
	  js = "".join("<script>\n%s\n</script>\n" % (data / n / (n + ".js")).read_text() for n in ("vega", "vega-lite", "vega-embed")); \
	  pathlib.Path(sys.argv[2]).write_text(pathlib.Path(sys.argv[1]).read_text().replace("<!-- vega -->", js))' $< $@

run: setup
	snakemake --cores 4
	snakemake --report results/report.html

# The smoke study in a throwaway copy of this checkout, whose files stay untouched; prints where
# its report is (tests/smoke/run.sh).
smoke: setup
	tests/smoke/run.sh

# Everything, as CI runs it (within 10 minutes on a 2-core machine).
test: setup
	python -m pytest

# The unit tests only, on synthetic data, offline, with this machine's kernels (under a minute).
test-fast: setup
	python -m pytest -m "not e2e and not cluster and not bench and not network and not isa"

# ruff (lint and format), snakefmt, and snakemake --lint but for its one lint that asks each rule
# for a conda environment or container: the rules run the pinned .venv of requirements.lock
# (docs/tests.md).
lint: setup
	ruff check src tests
	ruff format --check src tests
	snakefmt --check Snakefile workflow/rules
	out=$$(snakemake --lint 2>&1); \
	  echo "$$out" | grep -q -e '^Lints for rule' -e 'good condition' || { echo "$$out"; exit 1; }; \
	  ! echo "$$out" | grep '^    \* ' | grep -v 'Specify a conda environment or container for each rule'

# The tables of README.md and docs/, from results/ and benchmarks/ (after a retrain or a bench).
tables: setup
	lenet-mnist tables

# The smoke study through workflow/profiles/slurm on a one-node SLURM that the tests start on this
# machine and stop, pass or fail (root, Debian: tests/cluster/slurm.sh installs what is missing).
test-cluster: setup
	python -m pytest -m cluster

# A train job against the notebook's loop, on this machine (after the benchmark's own test); the
# raw data first, if missing.
bench: setup
	python -m pytest -m bench
	snakemake --cores 1 data/MNIST/raw
	lenet-mnist bench --raw data/MNIST/raw --out benchmarks/results.json

# The validation phase's drift between machine types: these pilot jobs retrained with AVX2's
# kernels, beside this checkout's results (the design stage reads both histories of each).
DRIFT_JOBS := $(foreach run,combined_cosine_20 combined_cosine_affine_20 combined_cosine_50 \
  combined_cosine_affine_50,$(run):0 $(run):1 $(run):2) relu_max_pool:0 momentum:0 size_20:0 affine_20:0
bench-drift: setup
	snakemake --cores 2 $(foreach job,$(DRIFT_JOBS),results/history/$(subst :,/,$(job)).csv)
	lenet-mnist bench-drift --jobs $(DRIFT_JOBS) --out benchmarks/drift.json

# Do the claims keep their verdicts on another machine type? Every job of the Q4 studies' claims
# retrained and scored with AVX2's kernels, and each claim judged again.
VERDICT_STUDIES := q4_augmentation q4_notebook_augmentation
bench-verdicts: setup
	snakemake --cores 2 results/summary.json
	lenet-mnist bench-drift --studies $(VERDICT_STUDIES) --out benchmarks/verdicts.json

# The whole study of params.yaml rebuilt from scratch and timed; per-rule times and memory from
# Snakemake's benchmark files.
bench-study: setup
	rm -rf benchmarks/snakemake
	start=$$(date +%s.%N) && snakemake --cores 4 --forceall \
	  && lenet-mnist bench-study --benchmarks benchmarks/snakemake --out benchmarks/study.json \
	  --wall-s $$(python -c "import sys, time; print(time.time() - float(sys.argv[1]))" $$start)

lock: setup
	{ head -n 2 requirements.lock; $(BIN)/python -m pip freeze --all --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf .snakemake logs
