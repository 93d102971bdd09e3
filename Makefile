# `make run` and `make test` do all set-up themselves; a second call skips what is installed.
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup run test lock clean

setup: $(INSTALLED)

# Reinstalled only when the pins or the package metadata change.
$(INSTALLED): requirements.lock pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

run: setup
	snakemake --cores 4 --workflow-profile workflow/profiles/default
	snakemake --report results/report.html

test: setup
	python -m pytest

lock: setup
	{ head -n 2 requirements.lock; $(BIN)/python -m pip freeze --all --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf .snakemake logs
