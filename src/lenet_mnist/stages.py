"""Every `lenet-mnist` command, declared once: the function it runs, its arguments and, for a
pipeline stage, the params.yaml sections it reads. cli.py builds its subcommands from these,
fingerprints.py fingerprints each stage's module, check writes their fingerprints, and a test
(tests/test_stages.py) holds the Snakefile's rules and dvc.yaml's stages to them. Adding a stage is
a module, a declaration here, a rule and a dvc stage (docs/stages.md)."""

import argparse
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Arg:
    """A command-line argument, passed to the function as `dest`. A path is an input or an output:
    the CLI refuses an input that is a special file and an output that overlaps an input."""

    flag: str
    dest: str
    help: str
    role: str = "input"  # "input" or "output" (paths), or "value"
    options: dict = field(default_factory=dict)  # argparse's, for a value

    def add_to(self, parser):
        if self.role == "value":
            named = {"dest": self.dest} if self.flag.startswith("-") else {}  # a positional is its dest
            parser.add_argument(self.flag, **named, help=self.help, **self.options)
        else:
            parser.add_argument(self.flag, dest=self.dest, type=Path, required=True, help=self.help)


def path_in(flag, dest, help):
    return Arg(flag, dest, help)


def path_out(flag, dest, help):
    return Arg(flag, dest, "output: " + help, role="output")


def value(flag, dest, help, **options):
    return Arg(flag, dest, help, role="value", options=options)


@dataclass(frozen=True)
class Command:
    """`lenet-mnist <name>`: module.function(params, **its arguments), `params` (the validated
    params.yaml) and `params_path` passed where the function takes them. A stage is a Snakemake
    rule and a dvc.yaml stage that runs this command; `params` lists the sections of params.yaml
    that its dvc stage declares, and a fingerprinted stage depends on its module's fingerprint."""

    name: str
    help: str
    module: str
    function: str
    args: tuple = ()
    stage: bool = False
    fingerprinted: bool = False
    params: tuple = ()

    @property
    def inputs(self):
        return [a for a in self.args if a.role == "input"]

    @property
    def outputs(self):
        return [a for a in self.args if a.role == "output"]


def positive(text):
    """An argparse type: a whole number of at least 1."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return number


def job(text):
    """An argparse type: RUN:SEED."""
    run, _, seed = text.rpartition(":")
    if not run or not seed.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not RUN:SEED")
    return run, int(seed)


def stage(name, help, *args, fingerprinted=True, params=(), module=None):
    return Command(name, help, module or name, name, args, True, fingerprinted, params)


def tool(name, help, module, function, *args):
    return Command(name, help, module, function, args)


RAW = path_in("--raw", "raw_dir", "raw directory")
RUN = value("--run", "run", "a key of runs in params.yaml", required=True)
SEED = value("--seed", "seed", "the seed whose streams it draws from", type=int, required=True)
FRACTION = value("--fraction", "fraction", "one of subsample.fractions, spelled as listed", required=True)
HISTORY_DIR = path_in("--history-dir", "history_dir", "directory of histories (<run>/<seed>.csv)")
METRICS_DIR = path_in("--metrics-dir", "metrics_dir", "directory of metrics (<run>/<seed>.json)")
THREADS = value("--threads", "threads", "torch threads (default: %(default)s)", type=positive, default=1)
REMOTE = value("--remote", "remote", "a remote of .dvc/config (default: the default remote)")

COMMANDS = [
    stage(
        "download",
        "fetch the four raw MNIST files (official md5s)",
        path_out("--out", "raw_dir", "raw directory, torchvision's layout (data/MNIST/raw)"),
        fingerprinted=False,  # the official md5s fix the output (fingerprints.py)
        params=("data",),
    ),
    stage(
        "split",
        "the midterm's 50k/10k train/validation split",
        RAW,
        path_out("--train", "train_path", "training indices (.npy)"),
        path_out("--val", "val_path", "validation indices (.npy)"),
        params=("split",),
    ),
    stage(
        "check",
        "validate params.yaml; write workflow/jobs.yaml and the code fingerprints",
        fingerprinted=False,  # depends on the whole package (dvc.yaml)
    ),
    stage(
        "subsample",
        "a seed's class-stratified subset of the training split",
        FRACTION,
        SEED,
        RAW,
        path_in("--train", "train_path", "training indices (.npy)"),
        path_in("--val", "val_path", "validation indices (.npy), which the training split must not share"),
        path_out("--out", "out_path", "the subset and its key (.npz)"),
    ),
    stage(
        "prepare",
        "the training set of a (policy, fraction, seed): the subset's views",
        value("--policy", "policy", "a key of policies in params.yaml", required=True),
        FRACTION,
        SEED,
        RAW,
        path_in("--train-split", "train_split_path", "training indices (.npy)"),
        path_in("--subset", "subset_path", "the seed's subset (.npz)"),
        path_out("--out", "trainset_path", "the training set (.npz)"),
        params=("policies",),
    ),
    stage(
        "preview",
        "a policy's views beside the images they come from",
        RAW,
        path_in("--trainset", "trainset_path", "a prepared training set (.npz)"),
        path_out("--out", "png_path", "figure (.png)"),
    ),
    stage(
        "train",
        "train one run with one seed",
        value("--run", "run_name", RUN.help, required=True),
        SEED,
        path_in(
            "--trainset", "trainset_path", "the prepared training set of the run's policy, fraction and seed (.npz)"
        ),
        RAW,
        path_in("--val-split", "val_split_path", "validation indices (.npy)"),
        path_out("--checkpoint", "checkpoint_path", "the final checkpoint (.pt)"),
        path_out("--history", "history_path", "per-epoch losses and accuracies (.csv)"),
        THREADS,
        params=("runs", "models", "optimizers", "compute"),
    ),
    stage(
        "evaluate",
        "test metrics of one checkpoint on the official 10k test set",
        RUN,
        SEED,
        path_in("--checkpoint", "checkpoint_path", "the run's checkpoint for the seed (.pt)"),
        RAW,
        path_out("--out", "metrics_path", "metrics (.json)"),
        params=("evaluate",),
    ),
    stage(
        "design",
        "the validation phase: each claim sized from its pilot seeds and the drift",
        HISTORY_DIR,
        path_in("--drift", "drift_path", "jobs retrained with AVX2's kernels (benchmarks/drift.json)"),
        path_out("--out", "out_path", "each claim's pilot, sd, seeds needed and phase (.json)"),
        params=("design", "runs", "seeds", "studies"),
    ),
    stage(
        "summarize",
        "every run's metrics over its seeds, and each claim judged, in one file",
        METRICS_DIR,
        HISTORY_DIR,
        path_in("--design", "design_path", "the validation phase's sizing of the claims (results/design.json)"),
        path_in("--derivations", "derivations_path", "the checks of Problem Sets 1-3 (results/derivations.json)"),
        path_out("--summary", "summary_path", "the whole summary (.json)"),
        path_out("--metrics", "headline_path", "its headline numbers, for dvc metrics (.json)"),
        params=("runs", "seeds", "studies"),
    ),
    stage(
        "plot",
        "learning curves of a run, over its seeds",
        RUN,
        path_in("--history-dir", "history_dir", "the run's histories (<seed>.csv)"),
        path_out("--out", "png_path", "figure (.png)"),
    ),
    stage(
        "figures",
        "study figures, per-class differences, a confusion matrix, captions, answers",
        path_in("--summary", "summary_path", "the summary (results/summary.json)"),
        path_in("--answers", "answers_path", "the studies' hand-written answers (workflow/report/answers.yaml)"),
        HISTORY_DIR,
        METRICS_DIR,
        path_out("--out-dir", "out_dir", "figures (.png), their data (.csv) and report.json"),
        params=("studies", "runs", "split", "seeds"),
    ),
    stage(
        "derivations",
        "Problem Sets 1-3: closed forms checked against autograd, figures",
        path_in("--raw", "raw_dir", "raw directory (the Sobel figure's test digits)"),
        path_out("--checks", "checks_path", "each check's largest difference, and the figures' captions (.json)"),
        path_out("--out-dir", "out_dir", "a figure per problem set"),
        params=("derivations",),
    ),
    tool(
        "bench",
        "training samples per second: a train job against the notebook's loop",
        "bench.throughput",
        "bench",
        RAW,
        path_out("--out", "out_path", "the measured numbers and the machine (.json)"),
        THREADS,
        value("--samples", "samples", "images per timed epoch (default: %(default)s)", type=positive, default=12_800),
        value(
            "--repeats",
            "repeats",
            "rounds of fresh processes, one per contender (default: %(default)s)",
            type=positive,
            default=5,
        ),
        value(
            "--device", "device_name", "auto (CUDA when present), cpu or cuda (default: %(default)s)", default="auto"
        ),
    ),
    tool(
        "bench-study",
        "per-rule times and memory of a whole Snakemake run of params.yaml",
        "bench.study",
        "bench_study",
        path_in("--benchmarks", "benchmark_dir", "Snakemake's benchmark files (benchmarks/snakemake)"),
        value("--wall-s", "wall_s", "the run's wall time, in seconds", type=float, required=True),
        path_out("--out", "out_path", "the summary (.json)"),
    ),
    tool(
        "bench-drift",
        "jobs retrained with AVX2's kernels, beside this checkout's results",
        "bench.drift",
        "bench_drift",
        value("--jobs", "jobs", "jobs to retrain", nargs="+", type=job, default=[], metavar="RUN:SEED"),
        value(
            "--studies",
            "studies",
            "retrain and score every job of their claims, and judge them again",
            nargs="+",
            default=[],
            metavar="STUDY",
        ),
        value("--parallel", "parallel", "jobs side by side (default: %(default)s)", type=positive, default=2),
        path_out("--out", "out_path", "both histories per job, and the claims judged again (.json)"),
    ),
    tool(
        "lock",
        "record in dvc.lock the stages whose outputs a Snakemake run built",
        "sync",
        "lock",
        value("built", "built", "the run's output files (the Snakefile's onsuccess passes them)", nargs="+"),
    ),
    tool("touch", "after dvc pull, checkout or repro: mark DVC's outputs up to date for Snakemake", "sync", "touch"),
    tool(
        "tables",
        "rewrite the tables of README.md and docs/ from the results and benchmarks",
        "tables",
        "tables",
        value("--check", "check", "only check that they equal what the results give", action="store_true"),
    ),
    tool("push", "dvc push: the cache to a remote; a failure in one line", "sync", "push", REMOTE),
    tool(
        "pull",
        "dvc pull, then touch: outputs from a remote, up to date for both; a failure in one line",
        "sync",
        "pull",
        REMOTE,
    ),
]

BY_NAME = {command.name: command for command in COMMANDS}
STAGES = [command for command in COMMANDS if command.stage]
FINGERPRINTED = [command.name for command in STAGES if command.fingerprinted]
