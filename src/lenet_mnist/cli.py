"""`lenet-mnist <stage>`: one subcommand per pipeline stage, called alike by Snakemake and DVC, and
`lock`, `touch`, `push` and `pull`, which keep the two in agreement (sync.py)."""

import argparse
import copy
import logging
import sys
from pathlib import Path

from lenet_mnist.check import special_file
from lenet_mnist.errors import LenetError, os_error_line
from lenet_mnist.params import read_params, validate_params

log = logging.getLogger("lenet_mnist")


def run_download(params, args):
    from lenet_mnist.download import download

    download(params, args.out)


def run_split(params, args):
    from lenet_mnist.split import split

    split(params, args.raw, args.train, args.val)


def fraction_of(params, spelled):
    listed = {str(f): f for f in params["subsample"]["fractions"]}
    if spelled not in listed:
        raise LenetError(f"--fraction {spelled}: not in subsample.fractions (allowed: {', '.join(listed)})")
    return listed[spelled]


def checked_run(params, run):
    if run not in params["runs"]:
        raise LenetError(f"--run {run}: not a run of params.yaml (allowed: {', '.join(params['runs'])})")
    return run


def checked_seed(params, run, seed):
    """A seed that params.yaml trains the run with."""
    from lenet_mnist.jobs import run_seeds

    seeds = run_seeds(params, run)
    if seed not in seeds:
        raise LenetError(
            f"--seed {seed}: run {run} is trained with seeds 0 to {seeds[-1]} (seeds, studies.*.seeds, claims.*.seeds)"
        )
    return seed


def run_check(params, args):
    from lenet_mnist.check import check

    check(params)


def run_subsample(params, args):
    from lenet_mnist.subsample import subsample

    subsample(fraction_of(params, args.fraction), args.seed, args.raw, args.train, args.val, args.out)


def run_prepare(params, args):
    from lenet_mnist.prepare import prepare

    if args.policy not in params["policies"]:
        raise LenetError(
            f"--policy {args.policy}: not a policy of params.yaml (allowed: {', '.join(params['policies'])})"
        )
    fraction_of(params, args.fraction)
    prepare(params, args.policy, args.fraction, args.seed, args.raw, args.train_split, args.subset, args.out)


def run_preview(params, args):
    from lenet_mnist.preview import preview

    preview(args.raw, args.trainset, args.out)


def run_train(params, args):
    from lenet_mnist.check import check_device
    from lenet_mnist.train import train

    check_device(params)  # one line, not a traceback from torch
    seed = checked_seed(params, checked_run(params, args.run), args.seed)
    train(params, args.run, seed, args.trainset, args.raw, args.val_split, args.checkpoint, args.history, args.threads)


def run_evaluate(params, args):
    from lenet_mnist.evaluate import evaluate

    seed = checked_seed(params, checked_run(params, args.run), args.seed)
    evaluate(params, args.run, seed, args.checkpoint, args.raw, args.out)


def run_design(params, args):
    from lenet_mnist.design import design

    design(params, args.history_dir, args.drift, args.out)


def run_summarize(params, args):
    from lenet_mnist.summarize import summarize

    summarize(params, args.metrics_dir, args.history_dir, args.design, args.derivations, args.summary, args.metrics)


def run_plot(params, args):
    from lenet_mnist.plot import plot

    plot(params, checked_run(params, args.run), args.history_dir, args.out)


def run_figures(params, args):
    from lenet_mnist.figures import figures

    figures(params, args.summary, args.answers, args.history_dir, args.metrics_dir, args.out_dir)


def run_derivations(params, args):
    from lenet_mnist.derivations import derivations

    derivations(params, args.raw, args.out_dir)


def run_bench(params, args):
    from lenet_mnist.bench.throughput import bench

    bench(
        params["models"],
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


def run_bench_drift(params, args):
    from lenet_mnist.bench.drift import bench_drift

    bench_drift(args.params, params, args.jobs, args.studies, args.out, args.parallel)


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


def positive(text):
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def job(text):
    """An argparse type: RUN:SEED."""
    run, _, seed = text.rpartition(":")
    if not run or not seed.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not RUN:SEED")
    return run, int(seed)


def check_paths(args):
    """Refuse, before anything is read or written, inputs that are special files and outputs that
    would overwrite an input or write into one (--out at an input's directory, say)."""

    def given(role):
        return [(flag, getattr(args, flag[2:].replace("-", "_"))) for flag in getattr(args, role, [])]

    inputs, outputs = [("--params", args.params), *given("input_flags")], given("output_flags")
    if args.log:
        outputs.append(("--log", args.log))
    for flag, path in inputs:
        if found := special_file(path):
            raise LenetError(f"{flag} {found}: not a regular file or directory (a FIFO or device is never read)")
    for out_flag, out in outputs:
        for in_flag, source in inputs:
            a, b = out.resolve(), source.resolve()
            if a == b or a in b.parents or b in a.parents:
                raise LenetError(
                    f"{out_flag} {out}: overlaps the input {in_flag} {source} (an output must be a path of its own)"
                )


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
        """A path argument, an output if its help says so, else an input (main checks them)."""
        sub.add_argument(flag, type=Path, required=True, help=help)
        role = "output_flags" if help.startswith("output") else "input_flags"
        sub.set_defaults(**{role: [*(sub.get_default(role) or []), flag]})

    sub = stage("download", run_download, "fetch the four raw MNIST files (official md5s)")
    path(sub, "--out", "raw directory, torchvision's layout (data/MNIST/raw)")

    sub = stage("split", run_split, "the midterm's 50k/10k train/validation split")
    path(sub, "--raw", "raw directory")
    path(sub, "--train", "output: training indices (.npy)")
    path(sub, "--val", "output: validation indices (.npy)")

    stage("check", run_check, "validate params.yaml; write workflow/jobs.yaml and the code fingerprints")

    def seed(sub):
        sub.add_argument("--seed", type=int, required=True, help="the seed whose streams it draws from")

    def run(sub):
        sub.add_argument("--run", required=True, help="a key of runs in params.yaml")

    sub = stage("subsample", run_subsample, "a seed's class-stratified subset of the training split")
    sub.add_argument("--fraction", required=True, help="one of subsample.fractions, spelled as listed")
    seed(sub)
    path(sub, "--raw", "raw directory")
    path(sub, "--train", "training indices (.npy)")
    path(sub, "--val", "validation indices (.npy), which the training split must not share")
    path(sub, "--out", "output: the subset's indices (.npy)")

    sub = stage("prepare", run_prepare, "the training set of a (policy, fraction, seed): the subset's views")
    sub.add_argument("--policy", required=True, help="a key of policies in params.yaml")
    sub.add_argument("--fraction", required=True, help="one of subsample.fractions, spelled as listed")
    seed(sub)
    path(sub, "--raw", "raw directory")
    path(sub, "--train-split", "training indices (.npy)")
    path(sub, "--subset", "the seed's subset (.npy)")
    path(sub, "--out", "output: the training set (.npz)")

    sub = stage("preview", run_preview, "a policy's views beside the images they come from")
    path(sub, "--raw", "raw directory")
    path(sub, "--trainset", "a prepared training set (.npz)")
    path(sub, "--out", "output: figure (.png)")

    sub = stage("train", run_train, "train one run with one seed")
    run(sub)
    seed(sub)
    path(sub, "--trainset", "the prepared training set of the run's policy, fraction and seed (.npz)")
    path(sub, "--raw", "raw directory")
    path(sub, "--val-split", "validation indices (.npy)")
    path(sub, "--checkpoint", "output: the final checkpoint (.pt)")
    path(sub, "--history", "output: per-epoch losses and accuracies (.csv)")
    sub.add_argument("--threads", type=positive, default=1, help="torch threads (default: %(default)s)")

    sub = stage("evaluate", run_evaluate, "test metrics of one checkpoint on the official 10k test set")
    run(sub)
    seed(sub)
    path(sub, "--checkpoint", "the run's checkpoint for the seed (.pt)")
    path(sub, "--raw", "raw directory")
    path(sub, "--out", "output: metrics (.json)")

    sub = stage("design", run_design, "the validation phase: each claim sized from its pilot seeds and the drift")
    path(sub, "--history-dir", "directory of histories (<run>/<seed>.csv)")
    path(sub, "--drift", "jobs retrained with AVX2's kernels (benchmarks/drift.json)")
    path(sub, "--out", "output: each claim's pilot, sd, seeds needed and phase (.json)")

    sub = stage("summarize", run_summarize, "every run's metrics over its seeds, and each claim judged, in one file")
    path(sub, "--metrics-dir", "directory of metrics (<run>/<seed>.json)")
    path(sub, "--history-dir", "directory of histories (<run>/<seed>.csv)")
    path(sub, "--design", "the validation phase's sizing of the claims (results/design.json)")
    path(sub, "--derivations", "the checks of Problem Sets 1-3 (checks.json)")
    path(sub, "--summary", "output: the whole summary (.json)")
    path(sub, "--metrics", "output: its headline numbers, for dvc metrics (.json)")

    sub = stage("plot", run_plot, "learning curves of a run, over its seeds")
    run(sub)
    path(sub, "--history-dir", "the run's histories (<seed>.csv)")
    path(sub, "--out", "output: figure (.png)")

    sub = stage("figures", run_figures, "study figures, per-class differences, a confusion matrix, captions, answers")
    path(sub, "--summary", "the summary (results/summary.json)")
    path(sub, "--answers", "the studies' hand-written answers (workflow/report/answers.yaml)")
    path(sub, "--history-dir", "directory of histories (<run>/<seed>.csv)")
    path(sub, "--metrics-dir", "directory of metrics (<run>/<seed>.json)")
    path(sub, "--out-dir", "output: figures (.png), their data (.csv) and report.json")

    sub = stage("derivations", run_derivations, "Problem Sets 1-3: closed forms checked against autograd, figures")
    path(sub, "--raw", "raw directory (the Sobel figure's test digits)")
    path(sub, "--out-dir", "output: checks.json and a figure per problem set")

    sub = stage("bench", run_bench, "training samples per second: a train job against the notebook's loop")
    path(sub, "--raw", "raw directory")
    path(sub, "--out", "output: the measured numbers and the machine (.json)")
    sub.add_argument("--threads", type=positive, default=1, help="torch threads (default: %(default)s)")
    sub.add_argument("--samples", type=positive, default=12_800, help="images per timed epoch (default: %(default)s)")
    sub.add_argument(
        "--repeats",
        type=positive,
        default=5,
        help="rounds of fresh processes, one per contender (default: %(default)s)",
    )
    sub.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda (default: %(default)s)")

    sub = stage("bench-study", run_bench_study, "per-rule times and memory of a whole Snakemake run of params.yaml")
    path(sub, "--benchmarks", "Snakemake's benchmark files (benchmarks/snakemake)")
    sub.add_argument("--wall-s", type=float, required=True, help="the run's wall time, in seconds")
    path(sub, "--out", "output: the summary (.json)")

    sub = stage("bench-drift", run_bench_drift, "jobs retrained with AVX2's kernels, beside this checkout's results")
    sub.add_argument("--jobs", nargs="+", type=job, default=[], metavar="RUN:SEED", help="jobs to retrain")
    sub.add_argument(
        "--studies",
        nargs="+",
        default=[],
        metavar="STUDY",
        help="retrain and score every job of their claims, and judge them again",
    )
    sub.add_argument("--parallel", type=positive, default=2, help="jobs side by side (default: %(default)s)")
    path(sub, "--out", "output: both histories per job, and the claims judged again (.json)")

    sub = stage("bench-scale", run_bench_scale, "snakemake -n and dvc status on params.yaml and on a generated study")
    sub.add_argument("--runs", type=positive, default=1000, help="runs of the generated study (default: %(default)s)")
    sub.add_argument("--repeats", type=positive, default=3, help="timed calls of each (default: %(default)s)")
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
        check_paths(args)
        setup_logging(args.log)
    except LenetError as e:
        print(f"lenet-mnist {args.stage}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # --log names a directory, say
        print(f"lenet-mnist {args.stage}: error: --log {os_error_line(e)}", file=sys.stderr)
        return 1
    try:
        written = read_params(args.params)
        args.func(validate_params(copy.deepcopy(written), args.params), args)
        # Both tools record the params.yaml they find once a stage ends: outputs built from values
        # that were edited meanwhile must not be recorded as built from the new ones.
        if read_params(args.params) != written:
            raise LenetError(
                f"{args.params}: edited while {args.stage} ran, whose outputs are of the values it read "
                "at its start; run it again"
            )
    except LenetError as e:
        log.error("%s: error: %s", args.stage, e)
        return 1
    except OSError as e:  # a missing, unreadable or misplaced file; a full disk
        log.error("%s: error: %s", args.stage, os_error_line(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
