"""Helpers and fixtures of the end-to-end tests (a pytest plugin of conftest.py): the real snakemake,
dvc and lenet-mnist commands on the smoke params, in copies of the repository."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, commit_all

from lenet_mnist.download import OFFICIAL_MD5
from lenet_mnist.files import digest_of
from lenet_mnist.formats import format_ci
from lenet_mnist.jobs import run_seeds

BIN = Path(sys.executable).parent  # snakemake, dvc and lenet-mnist of this environment

GIT_USER = {
    f"GIT_{who}_{field}": value
    for who in ("AUTHOR", "COMMITTER")
    for field, value in (("NAME", "test"), ("EMAIL", "test@localhost"))
}  # dvc exp commits


def run(cmd, cwd, env=None, check=True, timeout=900):
    """`cmd` in `cwd`, killed after `timeout` s so that a hung server fails the test instead of stalling CI."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **GIT_USER, **(env or {})}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def write_params(repo, params):
    (repo / "params.yaml").write_text(yaml.safe_dump(params))  # sorts keys too, which must not matter


def snakemake_jobs(repo, *args, cores=4):
    """(rule, wildcards, command, inputs, outputs, logs and benchmark files, cores held, resources)
    of each job that a dry run plans, from Snakemake's API (tests/plan.py); `args`: --forceall."""
    out = run([sys.executable, str(ROOT / "tests/plan.py"), str(cores), *args], repo)
    return [{**job, "outputs": frozenset(job["outputs"])} for job in json.loads(out.stdout.splitlines()[-1])]


def dvc_index(repo):
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        return list(dvc.index.stages)


def dvc_stages(repo):
    """(command, outputs) of each stage but check, whose work Snakemake does as it reads the Snakefile."""
    return {
        (stage.cmd, frozenset(str(o.def_path) for o in stage.outs))
        for stage in dvc_index(repo)
        if stage.name != "check"
    }


def rerun_names(jobs):
    """Snakemake's jobs named as DVC names their stages: rule@<its wildcards' values, joined by
    '-'> (train@small-0, prepare@none-0.005-1), or the rule."""
    names = set()
    for job in jobs:
        values = [pair.split("=")[1] for pair in job["wildcards"].split(", ")] if job["wildcards"] else []
        names.add(f"{job['rule']}@{'-'.join(values)}" if values else job["rule"])
    return names


def stage_name(name):
    return name.split("@")[0]


def check_outputs(repo, params):
    for name, md5 in OFFICIAL_MD5.items():
        assert digest_of(repo / "data/MNIST/raw" / name) == md5
    summary = json.loads((repo / "results/summary.json").read_text())
    assert set(summary["runs"]) == set(params["runs"])
    for run in params["runs"]:
        for seed in run_seeds(params, run):
            metrics = json.loads((repo / f"results/metrics/{run}/{seed}.json").read_text())
            assert summary["runs"][run]["seeds"][str(seed)]["test_accuracy"] == metrics["test_accuracy"]
            assert metrics["n_test"] == 10_000 and sum(map(sum, metrics["confusion_matrix"])) == 10_000
            assert (repo / f"logs/train/{run}/{seed}.log").exists()
        assert summary["runs"][run]["test_accuracy"]["n"] == len(run_seeds(params, run))
        assert (repo / f"results/plots/{run}.png").read_bytes()[:4] == b"\x89PNG"
    assert summary["studies"]["smoke"]["runs"]["larger"] == summary["runs"]["larger"]["test_accuracy"]
    best = max(summary["runs"], key=lambda run: summary["runs"][run]["test_accuracy"]["mean"])
    assert summary["highest_mean"] == best
    design = json.loads((repo / "results/design.json").read_text())
    for name, claim in summary["claims"]["smoke"].items():
        assert claim["phase"] == design["claims"]["smoke"][name]["phase"] and claim["fixed_in"] == "validation"
    assert summary["derivations"]["passed"] and all(summary["derivations"]["passed"].values())
    for figure in ("ps1_sobel", "ps2_bptt", "ps3_positional"):
        assert (repo / f"results/derivations/{figure}.png").read_bytes()[:4] == b"\x89PNG"
    for figure in ["smoke", "smoke_sizes", "confusion", "smoke_per_class", "smoke_predictions"]:
        assert (repo / f"results/figures/{figure}.png").read_bytes()[:4] == b"\x89PNG"
    curves = pd.read_csv(repo / "results/figures/curves.csv")
    assert len(curves) == sum(params["runs"][run].get("epochs", 15) for run in params["studies"]["smoke"]["runs"])
    sizes = pd.read_csv(repo / "results/figures/sizes.csv").set_index("run")
    assert sizes.loc["larger", "test_accuracy"] == summary["runs"]["larger"]["test_accuracy"]["mean"]
    return summary


def report_numbers(summary):
    """How the captions and answers print each run's mean test accuracy and its interval."""
    return [format_ci(stat["test_accuracy"]) for stat in summary["runs"].values()]


def up_to_date(repo, env):
    """Whether both tools have nothing to do."""
    clean = run(["dvc", "status", "--json"], repo, env).stdout.strip() == "{}"
    out = run(["snakemake", "--dry-run", "--cores", "4"], repo, env)
    return clean and "Nothing to be done" in out.stdout + out.stderr


def dvc_reruns(repo, env):
    """The stages that `dvc status` finds changed, then those that `dvc repro` runs."""
    changed = set(json.loads(run(["dvc", "status", "--json"], repo, env).stdout))
    out = run(["dvc", "repro"], repo, env).stdout
    return changed, set(re.findall(r"Running stage '([^']+)'", out))


def outputs_of(repo):
    """Every output file by path, with its bytes' digest."""
    return {
        str(path.relative_to(repo)): digest_of(path)
        for top in ("data", "models", "results")
        for path in sorted((repo / top).rglob("*"))
        if path.is_file()
    }


def read_if_there(path):
    return path.read_text() if path.exists() else ""


def dvc_lock_is_held(repo):
    import zc.lockfile

    try:
        zc.lockfile.LockFile(str(repo / ".dvc/tmp/lock")).close()
    except zc.lockfile.LockError:
        return True
    return False


def start(cmd, repo, env):
    return subprocess.Popen(
        cmd,
        cwd=repo,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for(condition, what, seconds=120):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        time.sleep(0.2)


def every(pattern, seeds=(0, 1)):
    return [pattern.format(seed) for seed in seeds]


@pytest.fixture(scope="session")
def built(tmp_path_factory, wheel_cache):
    """The smoke study as `make smoke` builds it (tests/smoke/run.sh: `snakemake --cores 4` and the
    report, in a copy of this checkout), then committed; this checkout's files are untouched."""
    status = run(["git", "status", "--porcelain"], ROOT).stdout
    repo = tmp_path_factory.mktemp("built") / "repo"
    out = run([str(ROOT / "tests/smoke/run.sh"), str(repo)], ROOT, {"LENET_MNIST_CACHE": str(wheel_cache)}).stdout
    assert out.splitlines()[-1].endswith(f"its report: {repo}/results/report.html")
    assert run(["git", "status", "--porcelain"], ROOT).stdout == status
    commit_all(repo, "smoke study")
    return repo


@pytest.fixture
def built_copy(built, tmp_path):
    """A copy of the built repository, file times, DVC cache and Snakemake records included."""
    return Path(shutil.copytree(built, tmp_path / "repo", symlinks=True))
