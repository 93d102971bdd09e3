import ast
import importlib
import inspect
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, SMOKE_PARAMS

from lenet_mnist.checkpoint import save_checkpoint
from lenet_mnist.cli import main
from lenet_mnist.data import save_indices, save_trainset
from lenet_mnist.fingerprints import closure
from lenet_mnist.idx import encode_idx, read_idx
from lenet_mnist.model import build_model
from lenet_mnist.stages import BY_NAME
from lenet_mnist.stages import FINGERPRINTED as STAGES

LENET = {"activation": "sigmoid", "pool": "avg", "batchnorm": "none", "init": "default"}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    shutil.copy(SMOKE_PARAMS, tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_error(capsys, args):
    """Run the command; it must exit 1 with exactly one error line, which is returned."""
    assert main(args) == 1
    [line] = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    return line


def test_an_unknown_run_is_one_line_and_a_non_zero_exit(workdir, raw_dir, capsys):
    args = ["train", "--run", "nope", "--seed", "0", *train_files(raw_dir)]
    line = one_error(capsys, args)
    assert line.endswith("train: error: --run nope: not a run of params.yaml (allowed: small, larger)")
    assert not (workdir / "out").exists()


def test_a_seed_that_params_does_not_train_is_one_line(workdir, raw_dir, capsys):
    line = one_error(capsys, ["train", "--run", "small", "--seed", "2", *train_files(raw_dir)])
    assert line.endswith(
        "train: error: --seed 2: run small is trained with seeds 0 to 1 (seeds, studies.*.seeds, claims.*.seeds)"
    )
    assert not (workdir / "out").exists()


def test_training_without_a_prepared_set_is_one_line_and_writes_nothing(workdir, raw_dir, capsys):
    line = one_error(capsys, ["train", "--run", "small", "--seed", "0", *train_files(raw_dir)])
    assert "train: error: t.npz: not a training set written by lenet-mnist prepare" in line
    assert not (workdir / "out").exists()


def train_files(raw_dir):
    return [
        "--trainset",
        "t.npz",
        "--raw",
        str(raw_dir),
        "--val-split",
        "v.npy",
        "--checkpoint",
        "out/models/0.pt",
        "--history",
        "out/history/0.csv",
    ]


def test_bad_params_stop_a_stage_before_it_writes(workdir, raw_dir, capsys):
    (workdir / "params.yaml").write_text(SMOKE_PARAMS.read_text().replace("val_size: 10000", "val_size: -1"))
    line = one_error(capsys, ["split", "--raw", str(raw_dir), "--train", "t.npy", "--val", "v.npy", "--log", "s.log"])
    assert "params.yaml: split.val_size: -1 is less than the minimum of 1" in line
    assert not (workdir / "t.npy").exists() and not (workdir / "v.npy").exists()
    assert "split.val_size" in (workdir / "s.log").read_text()  # the rule's log says why too


def subsample_args(raw_dir, fraction):
    """subsample's arguments but --out, with t.npy and v.npy as the splits."""
    return [
        "subsample",
        "--fraction",
        fraction,
        "--seed",
        "0",
        "--raw",
        str(raw_dir),
        "--train",
        "t.npy",
        "--val",
        "v.npy",
    ]


def test_a_fraction_not_in_params_is_refused(workdir, raw_dir, capsys):
    line = one_error(
        capsys,
        [*subsample_args(raw_dir, "0.3"), "--out", "o.npy"],
    )
    assert line.endswith("--fraction 0.3: not in subsample.fractions (allowed: 0.005, 0.01)")


def test_a_truncated_raw_file_is_named(workdir, raw_dir, capsys):
    labels = raw_dir / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-10])
    line = one_error(capsys, ["split", "--raw", str(raw_dir), "--train", "t.npy", "--val", "v.npy"])
    assert f"{labels}: 290 data bytes, but dimensions (300,) need 300" in line


def nothing_in(directory):
    """No file or staging directory (a parent directory may have been made)."""
    return not directory.exists() or not any(directory.iterdir())


def split_args(raw):
    return ["split", "--raw", str(raw), "--train", "out/t.npy", "--val", "out/v.npy"]


def derivations_args(raw):  # a stage that reads the test images and labels
    return ["derivations", "--raw", str(raw), "--checks", "out/derivations.json", "--out-dir", "out/derivations"]


def relabel(raw_dir, label):
    """The test labels with one label changed, as a valid IDX file."""
    path = raw_dir / "t10k-labels-idx1-ubyte"
    labels = read_idx(path).copy()
    labels[7] = label
    path.write_bytes(encode_idx(labels))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda raw: shutil.rmtree(raw), "{raw}: no such directory (run the download stage first"),
        (lambda raw: shutil.rmtree(raw) or raw.write_text("x"), "{raw}: not a directory (run the download stage"),
        (
            lambda raw: (raw / "t10k-images-idx3-ubyte").unlink(),
            "{raw}/t10k-images-idx3-ubyte: no such file or directory",
        ),
        (
            lambda raw: (raw / "t10k-labels-idx1-ubyte").unlink() or (raw / "t10k-labels-idx1-ubyte").mkdir(),
            "{raw}/t10k-labels-idx1-ubyte: is a directory",
        ),
        (lambda raw: relabel(raw, 10), "{raw}/t10k-labels-idx1-ubyte: label 10 at index 7 (allowed: 0 to 9)"),
        (
            lambda raw: (raw / "t10k-labels-idx1-ubyte").write_bytes(encode_idx(np.zeros(99, np.uint8))),
            "{raw}/t10k-images-idx3-ubyte: 100 images but 99 labels in t10k-labels-idx1-ubyte",
        ),
        (
            lambda raw: (raw / "t10k-images-idx3-ubyte").write_bytes(encode_idx(np.zeros((100, 28, 27), np.uint8))),
            "{raw}/t10k-images-idx3-ubyte: images of shape (100, 28, 27), expected N x 28 x 28",
        ),
        (
            lambda raw: (raw / "t10k-labels-idx1-ubyte").write_bytes(encode_idx(np.zeros((100, 1), np.uint8))),
            "{raw}/t10k-labels-idx1-ubyte: labels of shape (100, 1), expected one dimension",
        ),
    ],
    ids=[
        "no raw dir",
        "raw is a file",
        "missing file",
        "directory for a file",
        "label 10",
        "counts differ",
        "image shape",
        "labels shape",
    ],
)
def test_raw_files_are_checked_for_what_the_stages_rely_on(workdir, raw_dir, capsys, damage, message):
    damage(raw_dir)
    line = one_error(capsys, derivations_args(raw_dir))
    assert line.split(": error: ", 1)[1].startswith(message.format(raw=raw_dir))
    assert nothing_in(workdir / "out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_raw_file_is_named(workdir, raw_dir, capsys):
    (raw_dir / "train-images-idx3-ubyte").chmod(0)
    line = one_error(capsys, split_args(raw_dir))
    assert line.endswith(f"{raw_dir}/train-images-idx3-ubyte: permission denied")


def test_a_log_that_is_a_directory_is_one_line(workdir, raw_dir, capsys):
    (workdir / "logs").mkdir()
    assert main([*split_args(raw_dir), "--log", "logs"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("lenet-mnist split: error: --log ") and line.endswith("/logs: is a directory")
    assert not (workdir / "out").exists()


def write_checkpoint(path, weights=None):
    """The checkpoint of an untrained LeNet of run small, seed 0, as train writes it; `weights` edits it."""
    torch.manual_seed(0)
    model = build_model(LENET)
    if weights:
        weights(model)
    save_checkpoint(path, model, LENET, {"run": "small", "seed": 0}, 1)


def evaluate_args(raw, checkpoint, out):
    return [
        "evaluate",
        "--run",
        "small",
        "--seed",
        "0",
        "--raw",
        str(raw),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out),
    ]


def test_evaluate_refuses_weights_that_are_not_finite(workdir, raw_dir, capsys):
    write_checkpoint(
        workdir / "models/0.pt", weights=lambda model: model[0].weight.data.view(-1)[3].fill_(float("nan"))
    )
    line = one_error(capsys, evaluate_args(raw_dir, workdir / "models/0.pt", workdir / "out/metrics/0.json"))
    assert line.endswith("models/0.pt: 0.weight holds weights that are not finite (the training diverged)")
    assert nothing_in(workdir / "out")


def test_a_full_disk_is_named_and_leaves_no_partial_set(workdir, raw_dir, tmp_path):
    """A real full disk: a 64 KiB tmpfs, filled but for a few bytes, mounted in a user and mount
    namespace of our own (no root needed where unprivileged user namespaces are allowed)."""
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare: no user namespaces on this machine")
    write_checkpoint(workdir / "models/0.pt")
    disk = tmp_path / "disk"
    disk.mkdir()
    lenet_mnist = Path(sys.executable).parent / "lenet-mnist"
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {disk} && head -c 64000 /dev/zero > {disk}/filler; "
        f"{lenet_mnist} {shlex.join(evaluate_args(raw_dir, workdir / 'models/0.pt', disk / 'metrics/run/0.json'))}; "
        f"echo rc=$?; cd {disk} && find . -mindepth 1 | sort"
    )
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, cwd=workdir)
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].endswith(
        f"evaluate: error: {disk}/metrics/run/0.json: no space left on device"
    )
    assert done.stdout.split() == ["rc=1", "./filler", "./metrics", "./metrics/run"]  # and no temporary


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda text: text.replace("lr: 0.1}", "lr: .nan}"), "optimizers.sgd.lr: .nan is not a finite number"),
        (
            lambda text: text.replace("epochs: 1\n", "epochs: 1.0\n"),
            "runs.small.epochs: 1.0 is not an integer (write 1)",
        ),
        (
            lambda text: text.replace("seeds: 2", "seeds: 1180591620717411303424"),
            "seeds: 1180591620717411303424 is greater than the maximum of 1000",
        ),
        (lambda text: text.replace("lr: 0.001}", "lr: 1e-3}"), "optimizers.adam.lr: '1e-3' is a string to YAML"),
        (lambda text: text.replace("  small:\n", '  "small\\n":\n', 1), "runs.'small\\n': a name may hold only"),
        (
            lambda text: text.replace("  - 0.005\n", "  - 0.0001\n"),
            "subsample.fractions.0: 0.0001 of the 50,000 training images is 5, fewer than 100",
        ),
        (lambda text: text + "extra: caf\xe9\n", "not UTF-8 text"),
        (lambda text: text + "deep: " + "[" * 40 + "]" * 40 + "\n", "nested deeper than 16 levels"),
        (lambda text: text.replace("  small:\n", "  1:\n", 1), "runs.1: YAML reads this key as int, not as a name"),
        (lambda text: text.replace("  none: {}", "  null: {}"), "policies.None: YAML reads this key as NoneType"),
    ],
    ids=[
        "nan",
        "float epochs",
        "huge seed count",
        "1e-3",
        "newline name",
        "tiny subset",
        "latin-1",
        "deep",
        "int key",
        "null key",
    ],
)
def test_every_class_of_bad_params_stops_a_stage_with_one_line(workdir, raw_dir, capsys, edit, message):
    text = edit(SMOKE_PARAMS.read_text())
    (workdir / "params.yaml").write_bytes(text.encode("latin-1") if "\xe9" in text else text.encode())
    line = one_error(capsys, split_args(raw_dir))
    assert f"split: error: params.yaml: {message}" in line
    assert nothing_in(workdir / "out")


@pytest.fixture
def no_hang():
    """A read that blocks (a FIFO) fails the test after 10 s instead of stalling it."""

    def hung(signum, frame):
        raise TimeoutError("blocked on a read")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("where", ["params.yaml", "a raw file"])
def test_a_fifo_is_refused_without_a_read(workdir, raw_dir, capsys, no_hang, where):
    fifo = workdir / "params.yaml" if where == "params.yaml" else raw_dir / "train-labels-idx1-ubyte"
    fifo.unlink()
    os.mkfifo(fifo)
    line = one_error(capsys, split_args(raw_dir))
    named = "--params params.yaml" if where == "params.yaml" else f"--raw {fifo}"
    assert line.endswith(f"split: error: {named}: not a regular file or directory (a FIFO or device is never read)")
    assert nothing_in(workdir / "out")


@pytest.mark.parametrize(
    "args, flag",
    [
        (
            ["--summary", "results/metrics"],
            "--summary results/metrics: overlaps the input --metrics-dir results/metrics",
        ),
        (["--summary", "results/metrics/small/2.json"], "--summary results/metrics/small/2.json: overlaps the input"),
        (["--summary", "results"], "--summary results: overlaps the input --metrics-dir results/metrics"),
        (["--summary", "s.json", "--log", "params.yaml"], "--log params.yaml: overlaps the input --params params.yaml"),
    ],
    ids=["an input", "inside an input", "above an input", "the log on params.yaml"],
)
def test_an_output_that_overlaps_an_input_is_refused_before_anything_is_written(workdir, capsys, args, flag):
    (workdir / "results/metrics/small").mkdir(parents=True)
    (workdir / "results/metrics/small/0.json").write_text("{}")
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    summarize = ["summarize", "--metrics-dir", "results/metrics", "--history-dir", "h", "--design", "design.json"]
    summarize += ["--derivations", "d.json"]
    line = one_error(capsys, [*summarize, "--metrics", "m.json", *args])
    assert f"summarize: error: {flag}" in line
    assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()} == before


def test_a_directory_output_keeps_a_directory_its_stage_did_not_write(workdir, raw_dir, capsys):
    plots = workdir / "results/plots"
    plots.mkdir(parents=True)
    (plots / "small.png").write_bytes(b"another stage's figure")
    args = ["derivations", "--raw", str(raw_dir), "--checks", "results/checks.json", "--out-dir", "results/plots"]
    line = one_error(capsys, args)
    assert line.endswith(
        "derivations: error: results/plots: exists and was not written by lenet-mnist derivations, so it is not "
        "replaced; remove it, or give the stage another output path"
    )
    assert [p.name for p in plots.iterdir()] == ["small.png"]


@pytest.mark.parametrize(
    "indices, message",
    [
        ([-1, 5, 7], "holds indices from -1 to 7 (allowed: 0 to 59999)"),
        ([3, 60_000], "holds indices from 3 to 60000 (allowed: 0 to 59999)"),
        ([3, 4, 4], "holds 1 repeated indices (each image once)"),
    ],
    ids=["negative", "out of range", "repeated"],
)
def test_index_files_are_checked_for_what_they_mean(workdir, raw_dir, capsys, indices, message):
    save_indices(workdir / "t.npy", indices)
    save_indices(workdir / "v.npy", [59_999])
    line = one_error(capsys, [*subsample_args(raw_dir, "0.005"), "--out", "out/s.npy"])
    assert line.endswith(f"subsample: error: t.npy: {message}")
    assert nothing_in(workdir / "out")


def test_training_on_validation_images_is_refused(workdir, raw_dir, capsys):
    subset = np.arange(20, 270, dtype=np.int64)
    images = np.zeros((1, len(subset), 28, 28), dtype=np.uint8)
    key = {"policy": "none", "fraction": "0.005", "seed": 0}
    save_trainset(workdir / "t.npz", images, np.zeros(len(subset), dtype=np.uint8), subset, key)
    save_indices(workdir / "v.npy", np.arange(0, 30))  # ten of the training images
    line = one_error(capsys, ["train", "--run", "small", "--seed", "0", *train_files(raw_dir)])
    assert line.endswith("train: error: t.npz: holds 10 images of the validation split v.npy")
    assert nothing_in(workdir / "out")


def test_threads_must_be_a_whole_number_of_at_least_one(workdir, raw_dir, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["train", "--run", "small", "--seed", "0", *train_files(raw_dir), "--threads", "0"])
    assert exit.value.code == 2
    [line] = capsys.readouterr().err.splitlines()[-1:]
    assert line == "lenet-mnist train: error: argument --threads: '0' is not a whole number >= 1"


def test_a_corrupt_summary_is_one_line(workdir, capsys):
    (workdir / "metrics.json").write_text('{"runs": {"small": ')
    args = ["figures", "--summary", "metrics.json", "--answers", "a.yaml", "--history-dir", "h", "--metrics-dir", "m"]
    args += ["--out-dir", "out"]
    line = one_error(capsys, args)
    assert "figures: error: metrics.json: not a summary written by lenet-mnist summarize (Expecting value" in line
    assert not (workdir / "out").exists()


def test_params_edited_while_a_stage_runs_fail_it(workdir, raw_dir, capsys, monkeypatch):
    """Both tools record the params.yaml they find when a stage ends: outputs of the old values
    must not be recorded under the new ones."""
    from lenet_mnist import split

    real_split = split.split

    def split_then_edit(params, raw_dir, train_path, val_path):
        real_split(params, raw_dir, train_path, val_path)
        (workdir / "params.yaml").write_text(SMOKE_PARAMS.read_text().replace("seed: 0", "seed: 1", 1))

    monkeypatch.setattr(split, "split", split_then_edit)
    line = one_error(capsys, ["split", "--raw", str(raw_dir), "--train", "out/t.npy", "--val", "out/v.npy"])
    assert line.endswith(
        "split: error: params.yaml: edited while split ran, whose outputs are of the values it read at its start; "
        "run it again"
    )


@pytest.mark.parametrize("stage", ["check", "train"])
def test_cuda_without_a_gpu_is_refused_in_one_line(workdir, raw_dir, capsys, monkeypatch, stage):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (workdir / "params.yaml").write_text(SMOKE_PARAMS.read_text().replace("device: cpu", "device: cuda"))
    args = ["check"] if stage == "check" else ["train", "--run", "small", "--seed", "0", *train_files(raw_dir)]
    line = one_error(capsys, args)
    assert line.endswith(
        f"{stage}: error: params.yaml: compute.device: cuda, but torch finds no CUDA device on this machine "
        "(allowed here: auto, cpu)"
    )
    assert not (workdir / "workflow").exists() and nothing_in(workdir / "out")


def test_cli_parses_and_dispatches_and_holds_no_stage_logic():
    """What a stage's command runs beyond argument parsing is its declared function's module and
    what that imports: its fingerprint. cli.py reads only the declarations, params.yaml and paths."""
    tree = ast.parse((ROOT / "src/lenet_mnist/cli.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {m for m in imported if m.startswith("lenet_mnist")} == {
        "lenet_mnist.check",  # special_file, on every path argument
        "lenet_mnist.errors",
        "lenet_mnist.params",
        "lenet_mnist.stages",
    }
    assert not [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("run_")]


KEYED = {"--run", "--seed", "--fraction", "--policy"}


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_checks_its_keys_inside_its_fingerprint(stage):
    """A stage given a job's key checks it itself (jobs.py), so the check is in its fingerprint."""
    command = BY_NAME[stage]
    function = getattr(importlib.import_module(f"lenet_mnist.{command.module}"), command.function)
    source = inspect.getsource(function)
    keyed = {arg.flag for arg in command.args} & KEYED
    if keyed:
        assert "jobs" in closure(command.module)
        assert any(check in source for check in ("checked_job(", "checked_run(", "fraction_of(")), stage
