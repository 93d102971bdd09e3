import argparse
import csv
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lenet_mnist.checkpoint import load_checkpoint, save_checkpoint
from lenet_mnist.data import read_trainset
from lenet_mnist.errors import LenetError
from lenet_mnist.evaluate import evaluate
from lenet_mnist.model import build_model
from lenet_mnist.prepare import prepare
from lenet_mnist.split import split
from lenet_mnist.subsample import save_subset, subsample
from lenet_mnist.train import HISTORY_COLUMNS, resume_path, train

BIN = Path(sys.executable).parent


@pytest.fixture
def stage_files(tmp_path, raw_dir, params):
    paths = {"train_split": tmp_path / "split/train.npy", "val_split": tmp_path / "split/val.npy"}
    split(params, raw_dir, paths["train_split"], paths["val_split"])
    return paths


def prepare_tiny(params, raw_dir, stage_files, out_dir, seed):
    """The tiny run's training set for `seed` in out_dir: its subset, then its views."""
    run = params["runs"]["tiny"]
    subset, trainset = out_dir / f"subsets/{seed}.npz", out_dir / f"prepared/{seed}.npz"
    subsample(params, str(run["fraction"]), seed, raw_dir, stage_files["train_split"], stage_files["val_split"], subset)
    prepare(params, run["policy"], str(run["fraction"]), seed, raw_dir, stage_files["train_split"], subset, trainset)
    return trainset


def run_training(params, raw_dir, stage_files, out_dir, seed=0):
    """Train the tiny run with one seed; its checkpoint and history."""
    trainset = prepare_tiny(params, raw_dir, stage_files, out_dir, seed)
    checkpoint, history = out_dir / f"models/{seed}.pt", out_dir / f"history/{seed}.csv"
    train(params, "tiny", seed, trainset, raw_dir, stage_files["val_split"], checkpoint, history, threads=1)
    return checkpoint, history


def read_history(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_training_writes_a_history_and_a_safe_checkpoint(tmp_path, raw_dir, params, stage_files):
    checkpoint, history = run_training(params, raw_dir, stage_files, tmp_path / "a", seed=1)
    assert sorted(p.name for p in (tmp_path / "a/models").iterdir()) == ["1.pt"]
    rows = read_history(history)
    assert list(rows[0]) == HISTORY_COLUMNS and [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(0 <= float(r["val_accuracy"]) <= 1 for r in rows)
    model, ckpt = load_checkpoint(checkpoint)  # weights_only=True inside
    assert ckpt["epoch"] == 2 and ckpt["params"]["seed"] == 1 and ckpt["params"]["fraction"] == 1.0
    assert ckpt["params"]["run"] == "tiny" and ckpt["architecture"] == params["models"]["lenet"]


def test_same_params_and_threads_give_identical_history_and_weights(tmp_path, raw_dir, params, stage_files):
    a = run_training(params, raw_dir, stage_files, tmp_path / "a")
    b = run_training(params, raw_dir, stage_files, tmp_path / "b")
    assert a[1].read_bytes() == b[1].read_bytes()
    assert a[0].read_bytes() == b[0].read_bytes()  # the checkpoint too, byte for byte, so DVC's hash agrees


def test_another_seed_gives_other_weights(tmp_path, raw_dir, params, stage_files):
    a, _ = run_training(params, raw_dir, stage_files, tmp_path / "a", seed=0)
    b, _ = run_training(params, raw_dir, stage_files, tmp_path / "b", seed=1)
    wa, wb = (torch.load(path, weights_only=True)["state_dict"] for path in (a, b))
    assert not torch.equal(wa["0.weight"], wb["0.weight"])


def test_a_seeds_files_do_not_depend_on_what_trained_before_it(tmp_path, raw_dir, params, stage_files):
    """Seed 1 after seeds 0 and 5 in the same process gives the bytes of seed 1 in a fresh one: its
    streams are its own, whatever the process drew before."""
    params["runs"]["tiny"].update(model="lenet_relu_max", optimizer="adam", fraction=0.5)
    params["seeds"] = 6  # seeds 0 to 5
    for seed in (0, 5):
        run_training(params, raw_dir, stage_files, tmp_path / "before", seed=seed)
    after = run_training(params, raw_dir, stage_files, tmp_path / "before", seed=1)
    out = tmp_path / "fresh"
    trainset = prepare_tiny(params, raw_dir, stage_files, out, 1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run(train_command(tmp_path / "params.yaml", trainset, raw_dir, stage_files, out, 1), check=True)
    assert (out / "models/1.pt").read_bytes() == after[0].read_bytes()
    assert (out / "history/1.csv").read_bytes() == after[1].read_bytes()


def test_seeds_draw_their_own_subsets(tmp_path, raw_dir, params, stage_files):
    params["runs"]["tiny"]["fraction"] = 0.5
    sets = [read_trainset(prepare_tiny(params, raw_dir, stage_files, tmp_path, seed)) for seed in (0, 1)]
    assert len(sets[0][2]) == len(sets[1][2]) == 120 and not np.array_equal(sets[0][2], sets[1][2])


def test_a_relu_lenet_learns_a_learnable_task(tmp_path, raw_dir, params, stage_files):
    """The synthetic digits carry their class in a bright bar; a few epochs must find it."""
    params["runs"]["tiny"].update(model="lenet_relu_max", optimizer="adam", epochs=8, batch_size=16)
    checkpoint, history = run_training(params, raw_dir, stage_files, tmp_path / "a")
    rows = read_history(history)
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert float(rows[-1]["val_accuracy"]) > 0.9
    evaluate(params, "tiny", 0, checkpoint, raw_dir, tmp_path / "metrics.json")
    assert json.loads((tmp_path / "metrics.json").read_text())["test_accuracy"] > 0.9


def test_evaluation_of_a_bad_checkpoint_writes_nothing(tmp_path, raw_dir, params, stage_files):
    checkpoint, _ = run_training(params, raw_dir, stage_files, tmp_path / "a", seed=1)
    checkpoint.write_bytes(b"truncated")
    with pytest.raises(LenetError, match=r"models/1\.pt: not a readable lenet-mnist checkpoint"):
        evaluate(params, "tiny", 1, checkpoint, raw_dir, tmp_path / "metrics.json")
    assert not (tmp_path / "metrics.json").exists()


def test_evaluation_refuses_another_runs_or_seeds_checkpoint(tmp_path, raw_dir, params, stage_files):
    checkpoint, _ = run_training(params, raw_dir, stage_files, tmp_path / "a", seed=1)
    params["runs"]["other"] = params["runs"]["tiny"]
    for run, seed in (("tiny", 0), ("other", 1)):
        with pytest.raises(
            LenetError, match=rf"1\.pt: the checkpoint of run tiny, seed 1, .* not of run {run}, seed {seed}"
        ):
            evaluate(params, run, seed, checkpoint, raw_dir, tmp_path / "metrics.json")
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize(
    "drawn_for, message",
    [
        (("0.5", 1), r"drawn for \{'fraction': '0.5', 'seed': 1\}, not for \{'fraction': '0.5', 'seed': 0\}"),
        (("1.0", 0), r"drawn for \{'fraction': '1.0', 'seed': 0\}, not for \{'fraction': '0.5', 'seed': 0\}"),
        ("edited", r"not the subset of fraction 0.5 and seed 0 of .*train.npy \(edited, or drawn from another split\)"),
        ("the validation split", r"val.npy: not a subset written by lenet-mnist subsample"),
    ],
    ids=["another seed's", "another fraction's", "edited", "an index file"],
)
def test_prepare_refuses_any_subset_but_its_own(tmp_path, raw_dir, params, stage_files, drawn_for, message):
    subset = tmp_path / "subset.npz"
    if drawn_for == "the validation split":
        subset = stage_files["val_split"]
    elif drawn_for == "edited":
        subsample(params, "0.5", 0, raw_dir, stage_files["train_split"], stage_files["val_split"], subset)
        indices = np.load(subset)["indices"]
        save_subset(subset, indices[:-1], {"fraction": "0.5", "seed": 0})
    else:
        fraction, seed = drawn_for
        subsample(params, fraction, seed, raw_dir, stage_files["train_split"], stage_files["val_split"], subset)
    with pytest.raises(LenetError, match=message):
        prepare(params, "none", "0.5", 0, raw_dir, stage_files["train_split"], subset, tmp_path / "t.npz")
    assert not (tmp_path / "t.npz").exists()


def test_subsample_refuses_a_training_split_that_shares_validation_images(tmp_path, raw_dir, params, stage_files):
    with pytest.raises(LenetError, match=r"val.npy: holds 60 images of the validation split .*val.npy"):
        subsample(params, "0.5", 0, raw_dir, stage_files["val_split"], stage_files["val_split"], tmp_path / "s.npy")
    assert not (tmp_path / "s.npy").exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"truncated"])
def test_bad_checkpoints_are_refused(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(LenetError, match="not a readable lenet-mnist checkpoint"):
        load_checkpoint(path)


def test_a_pickled_object_is_refused_without_advice_to_unpickle_it(tmp_path):
    path = tmp_path / "object.pt"
    torch.save({"state_dict": argparse.Namespace(weights=1)}, path)
    with pytest.raises(LenetError) as info:
        load_checkpoint(path)
    assert str(info.value) == (
        f"{path}: not a lenet-mnist checkpoint: it holds a pickled argparse.Namespace, and only tensors are read"
    )


def test_truncated_and_foreign_checkpoints_are_refused(tmp_path, params):
    architecture = params["models"]["lenet"]
    good = tmp_path / "good.pt"
    save_checkpoint(good, build_model(architecture), architecture, {}, 1)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(LenetError, match="not a readable"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save(
        {"state_dict": torch.nn.Linear(2, 2).state_dict(), "architecture": architecture, "params": {}, "epoch": 1},
        foreign,
    )
    with pytest.raises(LenetError, match="weights do not fit architecture"):
        load_checkpoint(foreign)


def test_a_diverging_run_stops_naming_run_epoch_step_and_lr(tmp_path, raw_dir, params, stage_files):
    params["optimizers"]["sgd"]["lr"] = 100.0
    params["runs"]["tiny"]["epochs"] = 5
    with pytest.raises(LenetError) as info:
        run_training(params, raw_dir, stage_files, tmp_path / "a")
    message = str(info.value)
    assert re.fullmatch(
        r"run tiny seed 0: the loss is not finite at epoch \d+, step \d+ of 2, with learning rate "
        r"100\.0: training diverged \(a smaller optimizers\.sgd\.lr may help\)",
        message,
    ), message
    assert not (tmp_path / "a/models/0.pt").exists() and not (tmp_path / "a/history/0.csv").exists()


def test_a_cosine_schedule_lowers_the_rate_after_each_epoch(tmp_path, raw_dir, params, stage_files):
    params["runs"]["tiny"]["epochs"] = 3
    _, constant = run_training(params, raw_dir, stage_files, tmp_path / "a")
    params["optimizers"]["sgd"]["schedule"] = "cosine"
    _, cosine = run_training(params, raw_dir, stage_files, tmp_path / "b")
    first, later = read_history(constant), read_history(cosine)
    assert first[0] == later[0]  # epoch 1 at the full rate
    assert first[1]["train_loss"] != later[1]["train_loss"]


@pytest.mark.e2e  # a real lenet-mnist train process, killed and rerun
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_a_job_killed_mid_training_resumes_to_the_same_weights(tmp_path, raw_dir, params, stage_files, schedule):
    """A real `lenet-mnist train` process, killed with SIGKILL once it has saved its state after an
    epoch, then run again: it resumes there (the learning-rate schedule too) and ends with the
    files of an uninterrupted run."""
    params["optimizers"]["sgd"]["schedule"] = schedule
    params["runs"]["tiny"].update(epochs=60, batch_size=8)  # many short epochs: the kill lands inside the run
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run_training(params, raw_dir, stage_files, tmp_path / "a")
    out = tmp_path / "b"
    trainset = prepare_tiny(params, raw_dir, stage_files, out, 0)
    command = train_command(tmp_path / "params.yaml", trainset, raw_dir, stage_files, out, seed=0)
    resume = resume_path(out / "models/0.pt")
    job = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    while not resume.exists() and job.poll() is None:
        time.sleep(0.005)
    job.send_signal(signal.SIGKILL)
    assert job.wait() == -signal.SIGKILL, "the job ended before it could be killed"
    saved = torch.load(resume, weights_only=True)["epoch"]
    assert 1 <= saved < 60 and not (out / "models/0.pt").exists()

    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert f"resuming after epoch {saved}" in done.stderr
    assert (out / "history/0.csv").read_bytes() == (tmp_path / "a/history/0.csv").read_bytes()
    assert (out / "models/0.pt").read_bytes() == (tmp_path / "a/models/0.pt").read_bytes()
    assert not resume.exists()


def test_a_state_saved_by_another_configuration_is_not_resumed(tmp_path, raw_dir, params, stage_files):
    out = tmp_path / "a"
    checkpoint, _ = run_training(params, raw_dir, stage_files, out)
    expected = checkpoint.read_bytes()
    torch.save({"identity": {"seed": 99}, "epoch": 1}, resume_path(checkpoint))
    run_training(params, raw_dir, stage_files, out)
    assert checkpoint.read_bytes() == expected and not resume_path(checkpoint).exists()


def train_command(params_path, trainset, raw_dir, stage_files, out, seed):
    """`lenet-mnist train` of the tiny run with `seed`, writing into out/models and out/history."""
    return [
        str(BIN / "lenet-mnist"),
        "train",
        "--params",
        str(params_path),
        "--run",
        "tiny",
        "--seed",
        str(seed),
        "--trainset",
        str(trainset),
        "--raw",
        str(raw_dir),
        "--val-split",
        str(stage_files["val_split"]),
        "--checkpoint",
        str(out / f"models/{seed}.pt"),
        "--history",
        str(out / f"history/{seed}.csv"),
        "--threads",
        "1",
    ]
