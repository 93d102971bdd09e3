"""End to end, before any job: what both tools plan for params.yaml, and what they refuse to plan."""

import json
import os
import subprocess

import pytest
from conftest import ROOT, SMOKE_PARAMS, use_params
from e2e import BIN, GIT_USER, dvc_index, dvc_stages, rerun_names, run, snakemake_jobs, stage_name, write_params

from lenet_mnist.fingerprints import closure, fingerprint_path
from lenet_mnist.jobs import trainings
from lenet_mnist.params import load_params
from lenet_mnist.stages import FINGERPRINTED as STAGES

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("params", [ROOT / "params.yaml", SMOKE_PARAMS], ids=["default", "smoke"])
def test_snakemake_and_dvc_run_the_same_commands_on_the_same_files(repo_copy, params):
    use_params(repo_copy, params)
    jobs = snakemake_jobs(repo_copy, "--forceall")
    assert {(j["cmd"], j["outputs"]) for j in jobs} == dvc_stages(repo_copy)
    # A training and an evaluation job per (run, seed).
    expected = len(trainings(load_params(params)))
    assert sum(j["rule"] == "train" for j in jobs) == sum(j["rule"] == "evaluate" for j in jobs) == expected


@pytest.mark.parametrize("params", [ROOT / "params.yaml", SMOKE_PARAMS], ids=["default", "smoke"])
def test_no_two_jobs_write_the_same_file(repo_copy, params):
    """Under --cores 4 jobs run side by side: their outputs, logs and benchmark files are all
    distinct, and none lies inside a directory that another job writes."""
    use_params(repo_copy, params)
    jobs = snakemake_jobs(repo_copy, "--forceall")
    written = [path for job in jobs for path in (*job["outputs"], *job["side"])]
    assert len(written) == len(set(written))
    for job in jobs:
        for directory in job["outputs"]:
            assert not [
                path
                for other in jobs
                if other is not job
                for path in (*other["outputs"], *other["side"])
                if path.startswith(directory + "/")
            ]


@pytest.mark.parametrize("per_cpu", [0, 1, 2, 4])
def test_training_jobs_side_by_side_never_run_more_threads_than_the_cpus(repo_copy, per_cpu):
    """--cores beyond the machine's CPUs makes each training job hold more of Snakemake's cores,
    not run more torch threads: time-sliced jobs only slow each other down."""
    cpus = len(os.sched_getaffinity(0))
    cores = max(1, per_cpu * cpus)
    threads = use_params(repo_copy, SMOKE_PARAMS)["compute"]["threads"]
    train = [j for j in snakemake_jobs(repo_copy, "--forceall", cores=cores) if j["rule"] == "train"]
    assert train and all(f"--threads {threads}" in j["cmd"] for j in train)
    held = {j["threads"] for j in train}
    assert len(held) == 1
    side_by_side = cores // held.pop()
    assert side_by_side * threads <= max(cpus, threads)
    assert side_by_side >= min(cores, cpus) // threads  # and no fewer than the CPUs can take


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_every_job_declares_what_a_cluster_scheduler_needs(repo_copy, device):
    """Memory, time and CPUs on every job (from benchmarks/study.json), a GPU on training jobs
    where the params train on CUDA; a longer run asks for more time."""
    params = use_params(repo_copy, SMOKE_PARAMS)
    params["compute"]["device"] = device
    params["runs"]["longer"] = {**params["runs"]["larger"], "epochs": 2000}
    write_params(repo_copy, params)
    jobs = snakemake_jobs(repo_copy, "--forceall")
    for job in jobs:
        assert int(job["resources"]["mem_mb"]) >= 256 and int(job["resources"]["runtime"]) >= 1, job
        assert job["resources"]["cpus_per_task"] == str(params["compute"]["threads"] if job["rule"] == "train" else 1)
    train = {job["wildcards"]: job["resources"] for job in jobs if job["rule"] == "train"}
    assert {resources["gpu"] for resources in train.values()} == {"1" if device == "cuda" else "0"}
    assert int(train["run=longer, seed=0"]["runtime"]) > int(train["run=larger, seed=0"]["runtime"])


@pytest.mark.parametrize("study", ["missing", "not JSON", "without the train rule"])
def test_resources_fall_back_to_the_defaults_with_a_warning(repo_copy, study):
    """A missing or unreadable benchmarks/study.json, or a rule it has no entry for, gives the
    documented defaults (a peak of 2,048 MB and 600 s: 4,096 MB, 40 minutes) and a warning; the
    plan goes on."""
    use_params(repo_copy, SMOKE_PARAMS)
    path = repo_copy / "benchmarks/study.json"
    if study == "missing":
        path.unlink()
    elif study == "not JSON":
        path.write_text("{")
    else:
        measured = json.loads(path.read_text())
        del measured["rules"]["train"]
        path.write_text(json.dumps(measured))
    out = run(["snakemake", "--dry-run", "--printshellcmds", "--cores", "4", "--forceall"], repo_copy)
    warning = "no entry for train" if study == "without the train rule" else "benchmarks/study.json: not read"
    assert warning in out.stdout + out.stderr
    train = next(job["resources"] for job in snakemake_jobs(repo_copy, "--forceall") if job["rule"] == "train")
    assert (int(train["mem_mb"]), int(train["runtime"])) == (4096, 40)


def test_adding_a_run_in_params_adds_its_jobs_to_both(repo_copy):
    params = use_params(repo_copy, SMOKE_PARAMS)
    params["runs"]["extra"] = {"model": "lenet", "optimizer": "adam", "policy": "none", "fraction": 0.005}
    write_params(repo_copy, params)
    jobs = snakemake_jobs(repo_copy, "--forceall")
    assert {"train@extra-0", "train@extra-1", "evaluate@extra-0", "evaluate@extra-1", "plot@extra"} <= rerun_names(jobs)
    assert {(j["cmd"], j["outputs"]) for j in jobs} == dvc_stages(repo_copy)


def test_bad_params_stop_snakemake_before_any_job(repo_copy):
    params = use_params(repo_copy, SMOKE_PARAMS)
    params["runs"]["small"]["epochs"] = 0
    write_params(repo_copy, params)
    done = run(["snakemake", "--cores", "4"], repo_copy, check=False)
    assert done.returncode != 0
    assert done.stderr.strip() == "lenet-mnist: error: params.yaml: runs.small.epochs: 0 is less than the minimum of 1"
    assert not (repo_copy / "data").exists() and not (repo_copy / "logs").exists()


@pytest.mark.parametrize("option", [["--config", "seeds=[0]"], ["--configfile", "other.yaml"]])
def test_snakemake_config_is_refused_not_ignored(repo_copy, option):
    """The workflow reads params.yaml alone, as DVC does: Snakemake's own config would change one
    tool's view of the experiments and not the other's."""
    use_params(repo_copy, SMOKE_PARAMS)
    (repo_copy / "other.yaml").write_text("seeds: [0]\n")
    done = run(["snakemake", "--cores", "1", *option], repo_copy, check=False)
    assert done.returncode != 0
    assert done.stderr.strip() == (
        "lenet-mnist: error: --config and --configfile are not read: the experiments are defined in params.yaml "
        "alone (which DVC records too); edit params.yaml, or try a change with dvc exp run -S key=value"
    )
    assert not (repo_copy / "data").exists() and not (repo_copy / "logs").exists()


def test_each_stage_depends_on_its_fingerprint_in_both_tools(repo_copy):
    """A stage's code input is its fingerprint, whose lines name its module's import closure and the
    schema; both tools list it."""
    use_params(repo_copy, SMOKE_PARAMS)
    jobs = snakemake_jobs(repo_copy, "--forceall")
    assert {job["rule"] for job in jobs} == {stage_name(stage.name) for stage in dvc_index(repo_copy)} - {"check"}
    for job in jobs:
        if job["rule"] != "download":
            assert fingerprint_path(job["rule"]) in job["inputs"], job["rule"]
    for stage in dvc_index(repo_copy):
        deps = {str(dep.def_path) for dep in stage.deps}
        if stage_name(stage.name) not in ("check", "download"):
            assert fingerprint_path(stage_name(stage.name)) in deps, stage.name
    for stage in STAGES:
        listed = [line.split()[0] for line in (repo_copy / fingerprint_path(stage)).read_text().splitlines()[1:]]
        assert listed == [*(f"src/lenet_mnist/{m}.py" for m in closure(stage)), "src/lenet_mnist/params.schema.yaml"]
    assert "evaluate" in closure("evaluate") and "evaluate" not in closure("train")
    assert "plot" not in closure("train") and "plot" not in closure("prepare")  # no plotting stack in training


@pytest.mark.parametrize("tool", ["snakemake", "dvc"])
def test_a_fifo_under_workflow_is_refused_in_one_line(repo_copy, tool):
    """Snakemake reads workflow/ as it parses (fingerprints, jobs.yaml), and DVC's check stage runs
    first: a FIFO there is named, not read, which would hang either. (`dvc status` hashes it and
    hangs: docs/guarantees.md.)"""
    use_params(repo_copy, SMOKE_PARAMS)
    fifo = repo_copy / "workflow/fingerprints/train"
    fifo.unlink()
    os.mkfifo(fifo)
    cmd = ["snakemake", "--dry-run", "--cores", "1"] if tool == "snakemake" else ["dvc", "repro"]
    done = run(cmd, repo_copy, check=False, timeout=120)
    assert done.returncode != 0
    errors = [line for line in (done.stdout + done.stderr).splitlines() if "error: " in line]
    assert errors[0].endswith(
        "error: workflow/fingerprints/train: not a regular file or directory (a FIFO or device is never read); "
        "remove it"
    )


def alias_bomb(levels=8):
    """YAML whose aliases expand to 10**levels values."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("bad", ["a FIFO", "an alias bomb"])
def test_dvc_reads_params_yaml_before_check_can_refuse_it(repo_copy, bad):
    """The limit that docs/guarantees.md states: Snakemake refuses such a params.yaml in one line,
    while DVC parses it itself before its first stage runs, and blocks on a FIFO or runs out of
    memory (here under a 600 MB address-space limit, within which it reads a sound file). A DVC
    that refused them would fail this test, and the docs would need the news."""
    import resource

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (600 * 2**20, 600 * 2**20))

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **GIT_USER}
    params = repo_copy / "params.yaml"
    use_params(repo_copy, SMOKE_PARAMS)
    if bad == "a FIFO":
        params.unlink()
        os.mkfifo(params)
    else:
        sound = subprocess.run(["dvc", "status"], cwd=repo_copy, env=env, capture_output=True, preexec_fn=limited)
        assert sound.returncode == 0, sound.stderr  # the limit leaves dvc room for a sound file
        params.write_text(params.read_text() + alias_bomb())
    done = run(["snakemake", "--dry-run", "--cores", "1"], repo_copy, check=False, timeout=60)
    line = "params.yaml: not a regular file" if bad == "a FIFO" else "more than 100,000 values once its aliases"
    assert done.returncode == 1 and line in done.stderr.strip().splitlines()[-1]
    if bad == "a FIFO":
        with pytest.raises(subprocess.TimeoutExpired):
            subprocess.run(["dvc", "repro"], cwd=repo_copy, env=env, capture_output=True, timeout=5)
    else:
        done = subprocess.run(
            ["dvc", "repro"], cwd=repo_copy, env=env, capture_output=True, text=True, preexec_fn=limited
        )
        assert done.returncode != 0 and "check: error" not in done.stdout + done.stderr
