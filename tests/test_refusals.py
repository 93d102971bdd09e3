"""End to end: nothing lost when a job, a tool or a run is refused or killed."""

import json
import os
import re
import shutil
import signal
from pathlib import Path

import pytest
import torch
from e2e import (
    dvc_lock_is_held,
    every,
    outputs_of,
    read_if_there,
    rerun_names,
    run,
    snakemake_jobs,
    start,
    up_to_date,
    wait_for,
)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda text: text.replace("lr: 0.1}", "lr: .nan}"),
            "optimizers.sgd.lr: .nan is not a finite number (every number in params.yaml must be finite)",
        ),
        (  # equal to DVC, which compares values: validated all the same
            lambda text: text.replace("epochs: 1\n", "epochs: 1.0\n"),
            "runs.small.epochs: 1.0 is not an integer (write 1)",
        ),
        (
            lambda text: text.replace("  small:\n", '  "x$(touch pwned)":\n'),
            "runs.x$(touch pwned): a name may hold only letters, digits and '_', and must start with a letter or "
            "digit (it becomes a file name, a stage name and a DVC params key)",
        ),
        (
            lambda text: text.replace("  small:\n", "  1:\n"),
            'runs.1: YAML reads this key as int, not as a name (a key must be a string: quote it, as in "1":)',
        ),
        (
            lambda text: text.replace("threads: 1", "threads: '1; touch pwned'"),
            "compute.threads: '1; touch pwned' is not of type 'integer'",
        ),
        pytest.param(
            lambda text: text.replace("device: cpu", "device: cuda"),
            "compute.device: cuda, but torch finds no CUDA device on this machine (allowed here: auto, cpu)",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU"),
        ),
    ],
    ids=[
        "nan",
        "a whole-number float",
        "shell syntax in a name",
        "a key that is no string",
        "shell in a value",
        "cuda without a GPU",
    ],
)
def test_refused_params_run_nothing_and_leave_every_output_in_place_in_both(built_copy, wheel_cache, edit, message):
    """Both engines refuse the same params.yaml with the same line, before any command of a stage
    runs (DVC's first stage validates any edit: it depends on the file's bytes), and no value of
    params.yaml reaches a shell. DVC would delete a stage's outputs before its command runs, unless
    they persist (dvc.yaml)."""
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    before = outputs_of(built_copy)
    (built_copy / "params.yaml").write_text(edit((built_copy / "params.yaml").read_text()))
    done = run(["dvc", "repro"], built_copy, env, check=False)
    assert done.returncode != 0
    assert f"check: error: params.yaml: {message}" in done.stdout + done.stderr
    assert re.findall(r"Running stage '([^']+)'", done.stdout) == ["check"]
    done = run(["snakemake", "--cores", "1", "--forceall"], built_copy, env, check=False)
    assert done.returncode != 0 and done.stderr.strip().endswith(f"params.yaml: {message}")
    assert outputs_of(built_copy) == before and not list(built_copy.rglob("pwned"))


def test_params_edited_while_a_job_runs_are_not_recorded_for_its_outputs(built_copy, wheel_cache):
    """The job read the old values: it fails, neither tool records its outputs under the new ones,
    and both plan to retrain it."""
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    shutil.rmtree(built_copy / "logs/train")  # whose epochs the wait below looks for
    snakemake = start(["snakemake", "--cores", "1", "--forcerun", "train", "models/larger/0.pt"], built_copy, env)
    try:
        wait_for(lambda: "epoch 1/2" in read_if_there(built_copy / "logs/train/larger/0.log"), "the first epoch")
        params = built_copy / "params.yaml"
        params.write_text(params.read_text().replace("lr: 0.001}", "lr: 0.002}"))
    finally:
        out, _ = snakemake.communicate(timeout=300)
    # The job fails at its end, or, if the edit came after it, the run when it would record it.
    assert snakemake.returncode != 0
    assert re.search(
        r"params.yaml: edited while (train|the jobs) ran", out + read_if_there(built_copy / "logs/train/larger/0.log")
    )
    changed = set(json.loads(run(["dvc", "status", "--json"], built_copy, env).stdout))
    planned = rerun_names(snakemake_jobs(built_copy))
    assert {"train@larger-0", "train@larger-1"} <= changed and {"train@larger-0", "train@larger-1"} <= planned


def test_snakemake_and_dvc_refuse_to_run_at_once(built_copy, wheel_cache):
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    # One training job each way: the lock is held from the first job to the last.
    snakemake = start(["snakemake", "--cores", "1", "--forcerun", "train", "models/small/0.pt"], built_copy, env)
    try:
        wait_for(lambda: dvc_lock_is_held(built_copy), "snakemake holds DVC's lock")
        done = run(["dvc", "repro"], built_copy, env, check=False)
        assert done.returncode != 0 and done.stderr.strip().startswith("ERROR: Unable to acquire lock.")
    finally:
        out, _ = snakemake.communicate(timeout=300)
    assert snakemake.returncode == 0, out
    dvc = start(["dvc", "repro", "--force", "--single-item", "evaluate@small-0", "evaluate@small-1"], built_copy, env)
    try:
        wait_for(lambda: dvc_lock_is_held(built_copy), "dvc repro holds its lock")
        refused = []
        while dvc.poll() is None:  # between DVC's stages, and while one of them runs
            done = run(["snakemake", "--cores", "1", "--forcerun", "summarize"], built_copy, env, check=False)
            if dvc.poll() is None:
                assert done.returncode != 0, done.stderr
                [line] = [line for line in done.stderr.splitlines() if "error" in line]
                refused.append(re.sub(r"\(pid \d+: .*\)", "(pid: cmd)", line))
        assert refused and set(refused) <= {
            "lenet-mnist: error: .dvc/tmp/lock is held: a dvc command is running in this checkout; "
            "rerun when it has ended",
            "lenet-mnist: error: dvc is running in this checkout (pid: cmd); rerun when it has ended",
        }
    finally:
        out, _ = dvc.communicate(timeout=300)
    assert dvc.returncode == 0, out


def test_the_readmes_recovery_after_a_sigkill(built, tmp_path, wheel_cache):
    """snakemake killed with its jobs (SIGKILL to the process group) mid-training, forced to retrain
    one run (whose checkpoints it removed first, although the results downstream are still there):
    the commands of the README's recovery rebuild what is missing, to the bytes of an uninterrupted
    run, and leave no temporary."""
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    repo = Path(shutil.copytree(built, tmp_path / "repo", symlinks=True))
    shutil.rmtree(repo / "logs/train")  # whose epochs the wait below looks for
    snakemake = start(["snakemake", "--cores", "2", "--forcerun", *every("models/larger/{}.pt")], repo, env)
    try:
        wait_for(
            lambda: "epoch 1/2" in "".join(p.read_text() for p in (repo / "logs/train").glob("*/*.log")),
            "a training job's first epoch",
        )
    finally:
        os.killpg(snakemake.pid, signal.SIGKILL)
        snakemake.communicate()
    # Snakemake refuses: the killed run's lock, or its jobs' outputs marked incomplete (whichever it
    # meets first, as the kill lands in a training or an evaluate job); hence both recovery commands.
    done = run(["snakemake", "--cores", "2"], repo, env, check=False)
    assert done.returncode != 0 and re.search(r"LockException|Incomplete files", done.stderr), done.stderr
    run(["snakemake", "--unlock"], repo, env)
    run(["snakemake", "--cores", "2", "--rerun-incomplete"], repo, env)
    without_report = {name: digest for name, digest in outputs_of(built).items() if "report.html" not in name}
    assert {name: digest for name, digest in outputs_of(repo).items() if "report.html" not in name} == without_report
    assert up_to_date(repo, env)
    leftovers = [
        str(path) for path in repo.rglob("*") if path.suffix in (".tmp", ".resume") and ".git" not in path.parts
    ]
    assert leftovers == [] and ".tmp" not in run(["git", "status", "--porcelain"], repo).stdout


def test_a_hand_edited_jobs_file_is_refused_by_dvc_and_restored(built_copy, wheel_cache):
    """workflow/jobs.yaml is an output of check: an edit to it (a job's threads, say, which would
    retrain that job with other bytes) or one left from another branch reruns check, which rewrites
    it from params.yaml and stops; the next call finds everything up to date."""
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    jobs = built_copy / "workflow/jobs.yaml"
    jobs.write_text(jobs.read_text().replace("threads: 1", "threads: 2"))
    assert "check" in json.loads(run(["dvc", "status", "--json"], built_copy, env).stdout)
    done = run(["dvc", "repro"], built_copy, env, check=False)
    assert done.returncode != 0 and "check: error: workflow/jobs.yaml: rewritten" in done.stdout + done.stderr
    assert "threads: 2" not in jobs.read_text()
    assert "Running stage" not in run(["dvc", "repro"], built_copy, env).stdout.replace("Running stage 'check'", "")


def test_a_job_that_refuses_its_input_loses_no_output_in_snakemake(built_copy, wheel_cache):
    """A prepared set of another seed in place of seed 0's: the training job that reruns for it
    refuses it, and its checkpoint and history stay as they were. Snakemake would remove a job's
    outputs before it runs: they are flagged update(), which it keeps and, if the job fails, restores.
    (DVC's outputs persist, and DVC reruns prepare first, which rewrites the set.)"""
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    before = outputs_of(built_copy)
    prepared = built_copy / "data/prepared/none/0.005"
    (prepared / "0.npz").unlink()
    shutil.copy2(prepared / "1.npz", prepared / "0.npz")
    os.utime(prepared / "0.npz")  # newer than the checkpoint: Snakemake reruns the job
    done = run(["snakemake", "--cores", "1"], built_copy, env, check=False)
    assert done.returncode != 0
    assert "0.npz: prepared for {'fraction': '0.005', 'policy': 'none', 'seed': 1}" in done.stdout + done.stderr
    after = outputs_of(built_copy)
    kept = [name for name in before if not name.startswith(("data/prepared/none/0.005/0.npz", "results/previews/"))]
    assert {name: after.get(name) for name in kept} == {name: before[name] for name in kept}
