"""The smoke study through Snakemake's SLURM executor and workflow/profiles/slurm, on a one-node SLURM
that tests/cluster/slurm.sh starts on this machine (as root). `make test-cluster` runs these;
`make test` leaves them out (marker `cluster`)."""

import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
from conftest import ROOT, SMOKE_PARAMS, commit_all, copy_repo, use_params
from e2e import BIN, outputs_of, run, snakemake_jobs, up_to_date, write_params

from lenet_mnist.files import digest_of

pytestmark = pytest.mark.cluster

SLURM = ROOT / "tests" / "cluster" / "slurm.sh"
PROFILE = [
    "--profile",
    "workflow/profiles/slurm",
    "--slurm-init-seconds-before-status-checks",
    "5",
]  # the plugin waits 40 s by default
RUN_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def slurm():
    """A one-node SLURM, started for these tests and stopped after them, pass or fail."""
    try:
        subprocess.run([SLURM, "start"], check=True, timeout=600)
        yield
    finally:
        subprocess.run([SLURM, "stop"], check=True, timeout=120)


def snakemake_bounded(repo, *args, env=None):
    """snakemake in its own process group, bounded in time: past the limit it gets SIGINT, on which
    the SLURM plugin cancels its jobs (on SIGTERM it only waits), then SIGKILL."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    proc = subprocess.Popen(
        ["snakemake", *args],
        cwd=repo,
        env=env,
        text=True,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        raise AssertionError(f"snakemake {' '.join(args)} ran past {RUN_TIMEOUT_S} s:\n{out[-4000:]}")
    return proc.returncode, out


def smoke_repo(path):
    repo = copy_repo(path)
    use_params(repo, SMOKE_PARAMS)
    (repo / "dvc.lock").unlink()  # the default study's
    commit_all(repo, "smoke params")
    return repo


def submitted(out):
    """{SLURM job id: its log file} of each job that the plugin submitted."""
    return {int(m[1]): m[2] for m in re.finditer(r"submitted with SLURM jobid (\d+) \(log: ([^)]+)\)", out)}


def slurm_jobs():
    """{job id: (state, CPUs, memory, time limit, comment)} of every job that squeue still shows."""
    out = subprocess.run(
        ["squeue", "--states=all", "-h", "-o", "%i|%T|%C|%m|%l|%k"], check=True, capture_output=True, text=True
    ).stdout
    return {int(fields[0]): fields[1:] for fields in (line.split("|") for line in out.splitlines())}


def megabytes(memory):
    """squeue's memory (1024M, 1G) in MB."""
    return round(float(memory[:-1]) * {"M": 1, "G": 1024, "T": 1024**2}[memory[-1]])


@pytest.fixture(scope="module")
def through_slurm(slurm, tmp_path_factory, wheel_cache):
    """The smoke study built by `snakemake --profile workflow/profiles/slurm`: (repo, its output)."""
    repo = smoke_repo(tmp_path_factory.mktemp("slurm") / "repo")
    planned = snakemake_jobs(repo)  # what a dry run plans, with each job's resources
    rc, out = snakemake_bounded(repo, *PROFILE, env={"LENET_MNIST_CACHE": str(wheel_cache)})
    assert rc == 0, out[-4000:]
    return repo, out, planned


def test_every_job_goes_through_slurm_and_completes(through_slurm):
    repo, out, planned = through_slurm
    jobs = submitted(out)
    seen = slurm_jobs()
    assert {job: seen[job][0] for job in jobs} == {job: "COMPLETED" for job in jobs}
    # The per-seed jobs went in bundles (the profile's group "seeds": a training job with its
    # evaluation, two such pairs per sbatch job; the plugin names a bundle after the group and its
    # rules); every other job went alone.
    bundled = [job for job in jobs if seen[job][4].startswith("rule_seeds")]
    per_seed = [job for job in planned if job["rule"] in ("train", "evaluate")]
    assert bundled and len(bundled) < len(per_seed)
    assert len(jobs) - len(bundled) == len(planned) - len(per_seed)
    # Each job alone asked for what its rule declares: one CPU per torch thread, the rule's memory and time.
    declared = {f"rule_{job['rule']}" + wildcards_comment(job["wildcards"]): job for job in planned}
    for job in set(jobs) - set(bundled):
        state, cpus, memory, limit, comment = seen[job]
        want = {key: int(value) for key, value in declared[comment]["resources"].items() if value.isdigit()}
        assert (int(cpus), megabytes(memory), limit) == (
            want["cpus_per_task"],
            want["mem_mb"],
            time_limit(want["runtime"]),
        ), comment
    # A bundle asks for at least a training job's memory and time, and no more CPUs than the node has.
    train = next(job["resources"] for job in per_seed if job["rule"] == "train")
    for job in bundled:
        state, cpus, memory, limit, comment = seen[job]
        assert 1 <= int(cpus) <= os.cpu_count() and megabytes(memory) >= int(train["mem_mb"]), comment
        assert minutes(limit) >= int(train["runtime"]), comment


def time_limit(runtime):
    """squeue's time limit of `runtime` minutes."""
    hours, minutes = divmod(runtime, 60)
    return f"{hours}:{minutes:02d}:00" if hours else f"{minutes}:00"


def minutes(limit):
    """Minutes of squeue's time limit (M:SS or H:MM:SS)."""
    parts = [int(part) for part in limit.split(":")]
    return parts[0] * 60 + parts[1] if len(parts) == 3 else parts[0]


def wildcards_comment(wildcards):
    """The plugin's job comment after the rule: its wildcards' values, each after an underscore."""
    values = [pair.split("=")[1] for pair in wildcards.split(", ")] if wildcards else []
    return "_wildcards_" + "_".join(values) if values else ""


def test_slurm_writes_the_bytes_of_a_local_run(through_slurm, tmp_path, wheel_cache):
    repo, _, _ = through_slurm
    local = smoke_repo(tmp_path / "local")
    run(["snakemake", "--cores", "2"], local, {"LENET_MNIST_CACHE": str(wheel_cache)})
    built, expected = outputs_of(repo), outputs_of(local)
    assert any(name.endswith(".pt") for name in built)
    assert sorted(built) == sorted(expected)
    assert [name for name in built if built[name] != expected[name]] == []
    # The onsuccess handler ran on the submitting machine and locked every stage for DVC.
    assert up_to_date(repo, {"LENET_MNIST_CACHE": str(wheel_cache)})


def test_a_failing_job_fails_the_run_and_names_its_log(through_slurm, tmp_path, wheel_cache):
    repo = shutil.copytree(through_slurm[0], tmp_path / "repo", symlinks=True)
    trainset = repo / "data/prepared/none/0.005/0.npz"
    trainset.write_bytes(b"not an npz")  # newer than seed 0's checkpoint of small: it reruns, and fails
    time.sleep(1)
    rc, out = snakemake_bounded(repo, *PROFILE, env={"LENET_MNIST_CACHE": str(wheel_cache)})
    assert rc != 0
    assert "Error in rule train" in out or "Error in group seeds" in out
    # The bundle that held small's seed 0 failed (and the preview of policy none, which reads the
    # same file); the errors name their SLURM logs, which hold the jobs' own errors.
    failed = [job for job in submitted(out) if slurm_jobs()[job][0] == "FAILED"]
    assert failed and all(submitted(out)[job] in out for job in failed)
    assert all("data/prepared/none/0.005/0.npz" in open(submitted(out)[job]).read() for job in failed)
    assert "logs/train/small/0.log" in out
    assert json.loads(run(["dvc", "status", "--json"], repo).stdout)  # nothing was locked as done


def test_a_job_killed_at_its_time_limit_is_retried_with_more_time_and_completes(slurm, tmp_path, wheel_cache):
    """A training job whose first limit is too short for this node: SLURM kills it at 1 minute, the
    profile's retries resubmit it with 2, and it resumes after its last whole epoch to the bytes
    of an uninterrupted local run."""
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    repo, local = smoke_repo(tmp_path / "repo"), smoke_repo(tmp_path / "local")
    target = "models/slow/0.pt"
    # Epochs for about 150 s of training on this machine, from a timed run of a few.
    calibration = use_params(local, SMOKE_PARAMS)
    slow = {"model": "lenet", "optimizer": "sgd", "policy": "none", "fraction": 0.01, "epochs": 10}
    calibration["runs"] = {"slow": slow}
    calibration["studies"] = {"slow": {"question": "?", "figure": "learning_curves", "runs": ["slow"]}}
    write_params(local, calibration)
    run(["snakemake", "--cores", "1", target], local, env)
    stamps = re.findall(
        r"^(\S+ \S+) lenet_mnist.train: run slow seed 0 epoch", (local / "logs/train/slow/0.log").read_text(), re.M
    )
    first, last = (datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f") for stamp in (stamps[0], stamps[-1]))
    per_epoch = (last - first).total_seconds() / (len(stamps) - 1)
    slow["epochs"] = max(20, round(150 / per_epoch))
    for copy in (repo, local):
        write_params(copy, calibration)
        commit_all(copy, "a slow run")
    # A measured study whose training was far faster than this node trains: the first limit is the
    # smallest, 1 minute.
    (repo / "benchmarks/study.json").write_text(
        json.dumps({"training_samples": 10**12, "rules": {"train": {"total_s": 1, "max_s": 1, "max_rss_mb": 1024}}})
    )
    uninterrupted = subprocess.Popen(
        ["snakemake", "--cores", "1", "--forcerun", "train", target],
        cwd=local,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        rc, out = snakemake_bounded(repo, *PROFILE, target, env=env)
    finally:
        assert uninterrupted.wait(timeout=RUN_TIMEOUT_S) == 0
    assert rc == 0, out[-4000:]
    attempts = [job for job, log in submitted(out).items() if "train" in log or "seeds" in log]
    assert [slurm_jobs()[job][0] for job in attempts] == ["TIMEOUT", "COMPLETED"], out[-4000:]
    assert [slurm_jobs()[job][3] for job in attempts] == ["1:00", "2:00"]
    assert "resuming after epoch" in (repo / "logs/train/slow/0.log").read_text()
    assert digest_of(repo / target) == digest_of(local / target)
