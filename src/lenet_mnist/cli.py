"""`lenet-mnist <stage>`: one subcommand per pipeline stage, called alike by Snakemake and DVC, and
`lock`, `touch`, `push` and `pull`, which keep the two in agreement (sync.py)."""

import argparse
import logging
import sys
from pathlib import Path

from lenet_mnist.errors import LenetError, os_error_line
from lenet_mnist.params import load_params

log = logging.getLogger("lenet_mnist")


def run_download(params, args):
    from lenet_mnist.download import download

    download(params, args.out)


def run_split(params, args):
    from lenet_mnist.split import split

    split(params, args.raw, args.train, args.val)


def run_subsample(params, args):
    from lenet_mnist.subsample import subsample

    listed = {str(f): f for f in params["subsample"]["fractions"]}
    if args.fraction not in listed:
        raise LenetError(f"--fraction {args.fraction}: not in subsample.fractions (allowed: {', '.join(listed)})")
    subsample(params, listed[args.fraction], args.raw, args.train, args.out)


def run_prepare(params, args):
    from lenet_mnist.prepare import prepare

    if args.run not in params["runs"]:
        raise LenetError(f"--run {args.run}: not a run of params.yaml (allowed: {', '.join(params['runs'])})")
    prepare(params, args.run, args.raw, args.train_split, args.subset, args.trainset, args.recipe, args.preview)


def run_train(params, args):
    from lenet_mnist.train import train

    train(params, args.recipe, args.trainset, args.raw, args.val_split, args.checkpoints, args.histories, args.threads)


def run_evaluate(params, args):
    from lenet_mnist.evaluate import evaluate

    evaluate(params, args.checkpoints, args.raw, args.out)


def run_summarize(params, args):
    from lenet_mnist.summarize import summarize

    summarize(params, args.metrics_dir, args.history_dir, args.derivations, args.out)


def run_plot(params, args):
    from lenet_mnist.plot import plot_learning_curves

    paths = {seed: args.history_dir / f"{seed}.csv" for seed in params["seeds"]}
    plot_learning_curves(paths, args.out, title=args.history_dir.name)


def run_figures(params, args):
    from lenet_mnist.figures import figures

    figures(params, args.summary, args.history_dir, args.metrics_dir, args.out_dir)


def run_derivations(params, args):
    from lenet_mnist.derivations import derivations

    derivations(params, args.raw, args.out_dir)


def run_bench(params, args):
    from lenet_mnist.bench.throughput import bench

    bench(
        params["models"],
        len(params["seeds"]),
        args.raw,
        args.out,
        args.threads,
        args.samples,
        args.repeats,
        args.device,
    )


def run_bench_study(params, args):
    from lenet_mnist.bench.study import bench_study

    bench_study(params, args.benchmarks, args.wall_s, args.out)


def run_bench_scale(params, args):
    from lenet_mnist.bench.scale import bench_scale

    bench_scale(args.params, args.runs, args.out, args.repeats)


def run_lock(params, args):
    from lenet_mnist.sync import lock

    lock(args.outputs)


def run_touch(params, args):
    from lenet_mnist.sync import touch

    touch()


def run_tables(params, args):
    from lenet_mnist.tables import tables

    tables(check=args.check)


def run_push(params, args):
    from lenet_mnist.sync import push

    push(args.remote)


def run_pull(params, args):
    from lenet_mnist.sync import pull

    pull(args.remote)


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--params", type=Path, default=Path("params.yaml"), help="default: %(default)s")
    common.add_argument("--log", type=Path, help="also write the log to this file")

    parser = argparse.ArgumentParser(prog="lenet-mnist", description=__doc__)
    stages = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

    def stage(name, func, help):
        sub = stages.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(func=func)
        return sub

    def path(sub, flag, help):
        sub.add_argument(flag, type=Path, required=True, help=help)

    sub = stage("download", run_download, "fetch the four raw MNIST files (official md5s)")
    path(sub, "--out", "raw directory, torchvision's layout (data/MNIST/raw)")

    sub = stage("split", run_split, "the midterm's 50k/10k train/validation split")
    path(sub, "--raw", "raw directory")
    path(sub, "--train", "output: training indices (.npy)")
    path(sub, "--val", "output: validation indices (.npy)")

    sub = stage("subsample", run_subsample, "a nested, class-stratified subset of the training split")
    sub.add_argument("--fraction", required=True, help="one of subsample.fractions, spelled as listed")
    path(sub, "--raw", "raw directory")
    path(sub, "--train", "training indices (.npy)")
    path(sub, "--out", "output: the subset's indices (.npy)")

    sub = stage("prepare", run_prepare, "a run's training set (its subset under its policy) and its recipe")
    sub.add_argument("--run", required=True, help="a key of runs in params.yaml")
    path(sub, "--raw", "raw directory")
    path(sub, "--train-split", "training indices (.npy)")
    path(sub, "--subset", "the run's subset (.npy)")
    path(sub, "--trainset", "output: the training set (.npz)")
    path(sub, "--recipe", "output: the run with its model and optimizer resolved (.json)")
    path(sub, "--preview", "output: the first images beside their views (.png)")

    sub = stage("train", run_train, "train one prepared run with each of its seeds, side by side")
    path(sub, "--recipe", "the run's recipe (.json, from prepare)")
    path(sub, "--trainset", "the run's training set (.npz, from prepare)")
    path(sub, "--raw", "raw directory")
    path(sub, "--val-split", "validation indices (.npy)")
    path(sub, "--checkpoints", "output: a directory of final checkpoints, <seed>.pt for each of seeds")
    path(sub, "--histories", "output: a directory of per-epoch losses and accuracies, <seed>.csv")
    sub.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")

    sub = stage("evaluate", run_evaluate, "test metrics of a run's checkpoints on the official 10k test set")
    path(sub, "--checkpoints", "the run's checkpoints (<seed>.pt for each of seeds)")
    path(sub, "--raw", "raw directory")
    path(sub, "--out", "output: a directory of metrics, <seed>.json")

    sub = stage("summarize", run_summarize, "every run's test metrics over its seeds in one file")
    path(sub, "--metrics-dir", "directory of metrics (<run>/<seed>.json)")
    path(sub, "--history-dir", "directory of histories (<run>/<seed>.csv)")
    path(sub, "--derivations", "the checks of Problem Sets 1-3 (checks.json)")
    path(sub, "--out", "output: summary (.json)")

    sub = stage("plot", run_plot, "learning curves of a run, over its seeds")
    path(sub, "--history-dir", "the run's histories (<seed>.csv)")
    path(sub, "--out", "output: figure (.png)")

    sub = stage("figures", run_figures, "a figure per study, the best run's confusion matrix, captions and answers")
    path(sub, "--summary", "results/metrics.json")
    path(sub, "--history-dir", "directory of histories (<run>/<seed>.csv)")
    path(sub, "--metrics-dir", "directory of metrics (<run>/<seed>.json)")
    path(sub, "--out-dir", "output: figures (.png), their data (.csv) and report.json")

    sub = stage("derivations", run_derivations, "Problem Sets 1-3: closed forms checked against autograd, figures")
    path(sub, "--raw", "raw directory (the Sobel figure's test digits)")
    path(sub, "--out-dir", "output: checks.json and a figure per problem set")

    sub = stage("bench", run_bench, "training samples per second: our train stage against the notebook's loop")
    path(sub, "--raw", "raw directory")
    path(sub, "--out", "output: the measured numbers and the machine (.json)")
    sub.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    sub.add_argument("--samples", type=int, default=12_800, help="images per timed epoch (default: %(default)s)")
    sub.add_argument(
        "--repeats", type=int, default=5, help="rounds of fresh processes, one per contender (default: %(default)s)"
    )
    sub.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda (default: %(default)s)")

    sub = stage("bench-study", run_bench_study, "per-rule times and memory of a whole Snakemake run of params.yaml")
    path(sub, "--benchmarks", "Snakemake's benchmark files (benchmarks/snakemake)")
    sub.add_argument("--wall-s", type=float, required=True, help="the run's wall time, in seconds")
    path(sub, "--out", "output: the summary (.json)")

    sub = stage("bench-scale", run_bench_scale, "snakemake -n and dvc status on params.yaml and on a generated study")
    sub.add_argument("--runs", type=int, default=1000, help="runs of the generated study (default: %(default)s)")
    sub.add_argument("--repeats", type=int, default=3, help="timed calls of each (default: %(default)s)")
    path(sub, "--out", "output: the measured times (.json)")

    sub = stage("lock", run_lock, "record in dvc.lock the stages whose outputs a Snakemake run built")
    sub.add_argument("outputs", nargs="+", help="the run's output files (the Snakefile's onsuccess passes them)")

    stage("touch", run_touch, "after dvc pull, checkout or repro: mark DVC's outputs up to date for Snakemake")
    sub = stage("tables", run_tables, "rewrite the tables of README.md and docs/ from the results and benchmarks")
    sub.add_argument("--check", action="store_true", help="only check that they equal what the results give")
    for name, function, what in (
        ("push", run_push, "dvc push: the cache to a remote"),
        ("pull", run_pull, "dvc pull, then touch: outputs from a remote, up to date for both"),
    ):
        sub = stage(name, function, what + "; a failure in one line")
        sub.add_argument("--remote", help="a remote of .dvc/config (default: the default remote)")
    return parser


def setup_logging(log_file):
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", handlers=handlers, force=True)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        setup_logging(args.log)
    except OSError as e:  # --log names a directory, say
        print(f"lenet-mnist {args.stage}: error: --log {os_error_line(e)}", file=sys.stderr)
        return 1
    try:
        args.func(load_params(args.params), args)
    except LenetError as e:
        log.error("%s: error: %s", args.stage, e)
        return 1
    except OSError as e:  # a missing, unreadable or misplaced file; a full disk
        log.error("%s: error: %s", args.stage, os_error_line(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
