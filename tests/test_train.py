import csv
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from lenet_mnist.checkpoint import load_checkpoint, save_checkpoint
from lenet_mnist.data import load_recipe
from lenet_mnist.errors import LenetError
from lenet_mnist.evaluate import evaluate
from lenet_mnist.model import build_model
from lenet_mnist.prepare import prepare
from lenet_mnist.split import split
from lenet_mnist.subsample import subsample
from lenet_mnist.train import HISTORY_COLUMNS, resume_path, train

BIN = Path(sys.executable).parent


@pytest.fixture
def stage_files(tmp_path, raw_dir, params):
    paths = {
        "train_split": tmp_path / "split/train.npy",
        "val_split": tmp_path / "split/val.npy",
        "subset": tmp_path / "subsets/1.0.npy",
    }
    split(params, raw_dir, paths["train_split"], paths["val_split"])
    subsample(params, 1.0, raw_dir, paths["train_split"], paths["subset"])
    return paths


def prepare_tiny(params, raw_dir, stage_files, out_dir):
    """The tiny run's training set and recipe in out_dir."""
    trainset, recipe = out_dir / "train.npz", out_dir / "recipe.json"
    prepare(
        params,
        "tiny",
        raw_dir,
        stage_files["train_split"],
        stage_files["subset"],
        trainset,
        recipe,
        out_dir / "preview.png",
    )
    return trainset, recipe


def run_training(params, raw_dir, stage_files, out_dir, seed=0):
    """Train the tiny run with every seed of params; seed's checkpoint and history."""
    trainset, recipe = prepare_tiny(params, raw_dir, stage_files, out_dir)
    train(
        params, recipe, trainset, raw_dir, stage_files["val_split"], out_dir / "models", out_dir / "history", threads=1
    )
    return out_dir / f"models/{seed}.pt", out_dir / f"history/{seed}.csv"


def read_history(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_training_writes_a_history_and_a_safe_checkpoint_per_seed(tmp_path, raw_dir, params, stage_files):
    checkpoint, history = run_training(params, raw_dir, stage_files, tmp_path / "a", seed=1)
    assert sorted(p.name for p in (tmp_path / "a/models").iterdir()) == [f"{s}.pt" for s in params["seeds"]]
    assert sorted(p.name for p in (tmp_path / "a/history").iterdir()) == [f"{s}.csv" for s in params["seeds"]]
    rows = read_history(history)
    assert list(rows[0]) == HISTORY_COLUMNS and [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(0 <= float(r["val_accuracy"]) <= 1 for r in rows)
    model, ckpt = load_checkpoint(checkpoint)  # weights_only=True inside
    assert ckpt["epoch"] == 2 and ckpt["params"]["seed"] == 1 and ckpt["params"]["fraction"] == 1.0
    assert ckpt["architecture"] == params["models"]["lenet"]


def test_the_recipe_resolves_the_runs_named_entries(tmp_path, raw_dir, params, stage_files):
    run_training(params, raw_dir, stage_files, tmp_path / "a")
    recipe = load_recipe(tmp_path / "a" / "recipe.json")
    assert recipe["architecture"] == params["models"]["lenet"]
    assert recipe["optimizer_spec"] == params["optimizers"]["sgd"] and recipe["name"] == "tiny"


def test_same_params_and_threads_give_identical_history_and_weights(tmp_path, raw_dir, params, stage_files):
    a = run_training(params, raw_dir, stage_files, tmp_path / "a")
    b = run_training(params, raw_dir, stage_files, tmp_path / "b")
    assert a[1].read_bytes() == b[1].read_bytes()
    assert a[0].read_bytes() == b[0].read_bytes()  # the checkpoint too, byte for byte, so DVC's hash agrees


def test_another_seed_gives_other_weights(tmp_path, raw_dir, params, stage_files):
    run_training(params, raw_dir, stage_files, tmp_path / "a")
    wa, wb = (torch.load(tmp_path / f"a/models/{s}.pt", weights_only=True)["state_dict"] for s in (0, 1))
    assert not torch.equal(wa["0.weight"], wb["0.weight"])


@pytest.mark.parametrize("model", ["lenet", "lenet_relu_max"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_seed_trains_in_a_stack_as_it_trains_alone(tmp_path, raw_dir, params, stage_files, model, optimizer):
    """Seed 1 beside seed 0 starts from the weights and draws the batches it would alone: its
    history and weights agree with its training alone to float32 rounding."""
    params["runs"]["tiny"].update(model=model, optimizer=optimizer)
    params["seeds"] = [0, 1]
    stacked = run_training(params, raw_dir, stage_files, tmp_path / "a", seed=1)
    params["seeds"] = [1]
    alone = run_training(params, raw_dir, stage_files, tmp_path / "b", seed=1)
    for a, b in zip(read_history(stacked[1]), read_history(alone[1])):
        assert a["epoch"] == b["epoch"]
        for column in HISTORY_COLUMNS[1:]:
            assert float(a[column]) == pytest.approx(float(b[column]), abs=1e-5), column
    weights = [torch.load(path, weights_only=True)["state_dict"] for path in (stacked[0], alone[0])]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], rtol=1e-4, atol=1e-5)


def test_a_relu_lenet_learns_a_learnable_task(tmp_path, raw_dir, params, stage_files):
    """The synthetic digits carry their class in a bright bar; a few epochs must find it."""
    params["runs"]["tiny"].update(model="lenet_relu_max", optimizer="adam", epochs=8, batch_size=16)
    checkpoint, history = run_training(params, raw_dir, stage_files, tmp_path / "a")
    rows = read_history(history)
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert float(rows[-1]["val_accuracy"]) > 0.9
    evaluate(params, checkpoint.parent, raw_dir, tmp_path / "metrics")
    assert json.loads((tmp_path / "metrics/0.json").read_text())["test_accuracy"] > 0.9


def test_evaluation_of_a_run_with_a_bad_checkpoint_writes_nothing(tmp_path, raw_dir, params, stage_files):
    checkpoint, _ = run_training(params, raw_dir, stage_files, tmp_path / "a", seed=1)
    checkpoint.write_bytes(b"truncated")
    with pytest.raises(LenetError, match=r"models/1\.pt: not a readable lenet-mnist checkpoint"):
        evaluate(params, checkpoint.parent, raw_dir, tmp_path / "metrics")
    assert not (tmp_path / "metrics").exists()


def test_a_subset_outside_the_training_split_is_refused(tmp_path, raw_dir, params, stage_files):
    stage_files["subset"] = stage_files["val_split"]
    with pytest.raises(LenetError, match="outside the training split"):
        run_training(params, raw_dir, stage_files, tmp_path / "a")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"truncated"])
def test_bad_checkpoints_are_refused(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(LenetError, match="not a readable lenet-mnist checkpoint"):
        load_checkpoint(path)


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
        r"run tiny seed [01]: the loss is not finite at epoch \d+, step \d+ of 2, with learning rate "
        r"100\.0: training diverged \(a smaller optimizers\.sgd\.lr may help\)",
        message,
    ), message
    assert not (tmp_path / "a/models").exists() and not (tmp_path / "a/history").exists()


def test_a_cosine_schedule_lowers_the_rate_after_each_epoch(tmp_path, raw_dir, params, stage_files):
    params["runs"]["tiny"]["epochs"] = 3
    _, constant = run_training(params, raw_dir, stage_files, tmp_path / "a")
    params["optimizers"]["sgd"]["schedule"] = "cosine"
    _, cosine = run_training(params, raw_dir, stage_files, tmp_path / "b")
    first, later = read_history(constant), read_history(cosine)
    assert first[0] == later[0]  # epoch 1 at the full rate
    assert first[1]["train_loss"] != later[1]["train_loss"]


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
    trainset, recipe = prepare_tiny(params, raw_dir, stage_files, out)
    command = [
        str(BIN / "lenet-mnist"),
        "train",
        "--params",
        str(tmp_path / "params.yaml"),
        "--recipe",
        str(recipe),
        "--trainset",
        str(trainset),
        "--raw",
        str(raw_dir),
        "--val-split",
        str(stage_files["val_split"]),
        "--checkpoints",
        str(out / "models"),
        "--histories",
        str(out / "history"),
        "--threads",
        "1",
    ]
    resume = resume_path(out / "models")
    job = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    while not resume.exists() and job.poll() is None:
        time.sleep(0.005)
    job.send_signal(signal.SIGKILL)
    assert job.wait() == -signal.SIGKILL, "the job ended before it could be killed"
    saved = torch.load(resume, weights_only=True)["epoch"]
    assert 1 <= saved < 60 and not (out / "models").exists()

    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert f"resuming after epoch {saved}" in done.stderr
    for seed in params["seeds"]:
        assert (out / f"history/{seed}.csv").read_bytes() == (tmp_path / f"a/history/{seed}.csv").read_bytes()
        assert (out / f"models/{seed}.pt").read_bytes() == (tmp_path / f"a/models/{seed}.pt").read_bytes()
    assert not resume.exists()


def test_a_state_saved_by_another_configuration_is_not_resumed(tmp_path, raw_dir, params, stage_files):
    out = tmp_path / "a"
    checkpoint, _ = run_training(params, raw_dir, stage_files, out)
    expected = checkpoint.read_bytes()
    torch.save({"identity": {"seeds": [99]}, "epoch": 1}, resume_path(out / "models"))
    run_training(params, raw_dir, stage_files, out)
    assert checkpoint.read_bytes() == expected and not resume_path(out / "models").exists()
