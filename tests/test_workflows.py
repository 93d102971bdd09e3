"""End to end: the real snakemake and dvc commands on the smoke params, in copies of the repository."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT, SMOKE_PARAMS, commit_all, copy_repo, use_params

from lenet_mnist.download import OFFICIAL_MD5
from lenet_mnist.files import digest_of
from lenet_mnist.formats import format_ci, format_diff
from lenet_mnist.imports import STAGES, closure, fingerprint_path
from lenet_mnist.jobs import run_seeds, trainings
from lenet_mnist.params import load_params

pytestmark = pytest.mark.e2e

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
    """(rule, wildcards, command, inputs, outputs, logs and benchmark files, cores held, resources,
    reason) of each job of a dry run."""
    out = run(["snakemake", "--dry-run", "--printshellcmds", "--cores", str(cores), *args], repo)
    jobs, job = [], None
    for line in (out.stdout + out.stderr).splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            job = {
                "rule": m[1],
                "wildcards": "",
                "cmd": None,
                "inputs": [],
                "outputs": frozenset(),
                "side": [],
                "threads": 1,
                "resources": {},
                "reason": "",
            }
            jobs.append(job)
        elif job and (m := re.match(r"^\s+threads: (\d+)$", line)):  # printed when more than 1
            job["threads"] = int(m[1])
        elif job and (m := re.match(r"^\s+input: (.*)$", line)):
            job["inputs"] = m[1].split(", ")
        elif job and (m := re.match(r"^\s+reason: (.*)$", line)):
            job["reason"] = m[1]
        elif job and (m := re.match(r"^\s+output: (.*)$", line)):
            job["outputs"] = frozenset(name.removesuffix(" (update)") for name in m[1].split(", "))
        elif job and (m := re.match(r"^\s+(?:log|benchmark): (.*)$", line)):
            job["side"] += m[1].split(", ")
        elif job and (m := re.match(r"^\s+resources: (.*)$", line)):
            job["resources"] = dict(pair.split("=", 1) for pair in m[1].split(", "))
        elif job and (m := re.match(r"^\s+wildcards: (.*)$", line)):
            job["wildcards"] = m[1]
        elif job and line.startswith("Shell command: "):
            job["cmd"] = line.removeprefix("Shell command: ")
    return [j for j in jobs if j["rule"] != "all"]


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


@pytest.fixture(scope="module")
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


def test_snakemake_builds_everything_and_locks_it_for_dvc(built, wheel_cache):
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    summary = check_outputs(built, load_params(built / "params.yaml"))
    # The onsuccess handler recorded every stage in dvc.lock, and kept the files' times.
    locked = yaml.safe_load((built / "dvc.lock").read_text())["stages"]
    assert set(locked) == {stage.name for stage in dvc_index(built)}
    assert up_to_date(built, env)
    assert "Running stage" not in run(["dvc", "repro"], built, env).stdout
    # `dvc metrics show`: the headline numbers alone, a mean and n per run, an interval per pair.
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], built, env).stdout)
    assert list(shown[""]["data"]) == ["results/metrics.json"]
    shown = shown[""]["data"]["results/metrics.json"]["data"]
    assert shown["runs"] == {
        run: {"test_accuracy": stats["test_accuracy"]["mean"], "n": stats["test_accuracy"]["n"]}
        for run, stats in summary["runs"].items()
    }
    assert shown["claims"] == {
        "smoke": {
            name: {"diff": c["mean"], **({"p_holm": c["p_holm"]} if c["phase"] == "confirmatory" else {})}
            for name, c in summary["claims"]["smoke"].items()
        }
    }

    # The report's text states the measured numbers, as computed from the metrics.
    texts = json.loads((built / "results/figures/report.json").read_text())
    answers = {answer["study"]: answer for answer in texts["answers"]}
    assert list(answers) == ["smoke", "smoke_sizes"]  # in the order of params.yaml
    for number in report_numbers(summary):
        assert number in texts["captions"]["smoke"]
        assert number in [row["test_accuracy"] for row in answers["smoke"]["table"]]
    [compared_test, _] = texts["notebook_comparison"]
    assert compared_test == {
        "study": "smoke",
        "run": "small",
        "metric": "test_accuracy",
        "notebook": "0.0000",
        "ours": format_ci(summary["runs"]["small"]["test_accuracy"]),
    }
    # The study's claim on test accuracy, compared seed by seed: in metrics.json (and so in dvc
    # metrics), and in the report's table of claims.
    claim = summary["claims"]["smoke"]["larger_vs_small.test_accuracy"]
    accuracy = {
        run: [summary["runs"][run]["seeds"][str(s)]["test_accuracy"] for s in (0, 1)] for run in ("larger", "small")
    }
    assert claim["n"] == 2 and claim["differences"] == [a - b for a, b in zip(accuracy["larger"], accuracy["small"])]
    assert shown["claims"]["smoke"]["larger_vs_small.test_accuracy"]["diff"] == claim["mean"]
    assert format_diff(claim) in [row["difference"] for row in answers["smoke"]["claims"]]
    run(["snakemake", "--report", "results/report.html"], built, env)
    html = (built / "results/report.html").read_text()
    for number in [*report_numbers(summary), format_diff(claim)]:
        assert number in html
    assert "System Message" not in html  # every text of the report is valid reStructuredText


@pytest.fixture(scope="session")
def chromium():
    """Headless Chromium, installed from Debian's packages where missing (as root, as in CI)."""
    found = shutil.which("chromium")
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            subprocess.run(
                cmd, capture_output=True, timeout=600, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            )
        found = shutil.which("chromium")
    if not found:
        pytest.skip("no chromium, and no apt-get as root to install it")
    return found


def test_the_report_opens_at_its_top_in_a_1400x1000_window(built, chromium, tmp_path):
    """Rendered by headless Chromium (offline), the report's start page (as `make smoke` writes it)
    shows its first paragraph inside the window, not above the scroll top (workflow/report/workflow.rst
    says why)."""
    report = tmp_path / "report.html"
    probe = """<script>setTimeout(() => {
      const paragraphs = [...document.querySelectorAll("p")];
      const first = paragraphs.find(p => p.textContent.trim().startsWith("lenet-mnist answers"));
      document.title = first ? "top=" + Math.round(first.getBoundingClientRect().top) : "top=none";
    }, 4000);</script></body>"""
    head, _, tail = (built / "results/report.html").read_text().rpartition("</body>")  # not one in a script
    report.write_text(head + probe + tail)
    done = run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--window-size=1400,1000", "--virtual-time-budget=15000", "--dump-dom", report.as_uri()],
        tmp_path, timeout=120,
    )  # fmt: skip
    top = re.search(r"<title>top=(-?\d+|none)</title>", done.stdout)
    assert top and top[1] != "none" and 0 <= int(top[1]) < 1000, top and top[0]


def test_the_smoke_claims_keep_their_verdicts_when_retrained_with_avx2_kernels(built_copy, wheel_cache):
    """Every job of the smoke study's claims retrained and scored with ONEDNN_MAX_CPU_ISA=AVX2 and
    ATEN_CPU_CAPABILITY=avx2 (what another machine type computes), and each claim judged again
    with Holm's family: the verdicts that summarize gave, claim by claim."""
    out = built_copy / "verdicts.json"
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    run(["lenet-mnist", "bench-drift", "--studies", "smoke", "--out", str(out)], built_copy, env)
    summary = json.loads((built_copy / "results/summary.json").read_text())["claims"]["smoke"]
    found = json.loads(out.read_text())
    assert found["kernels"]["avx2"]["aten_cpu_capability"] == "AVX2"
    found = found["studies"]["smoke"]
    assert set(found) == set(summary)
    judged = [name for name, claim in summary.items() if claim["verdict"] != "exploratory"]
    assert judged, "no smoke claim has a verdict to keep"
    for name, claim in found.items():
        assert claim["native"]["verdict"] == summary[name]["verdict"], name
        assert claim["native"]["mean"] == summary[name]["mean"], name  # read from the same results
        assert claim["avx2"]["verdict"] == claim["native"]["verdict"], (name, claim)


def test_one_core_gives_the_files_of_four(built, tmp_path, wheel_cache):
    """`snakemake --cores 1` (jobs one after another) writes what `--cores 4` (the built fixture,
    jobs side by side) wrote: prepared sets, checkpoints, histories and metrics, byte for byte."""
    repo = copy_repo(tmp_path / "repo")
    use_params(repo, SMOKE_PARAMS)
    (repo / "dvc.lock").unlink()
    commit_all(repo, "smoke params")
    # Up to the evaluations: what follows them reads only these files.
    run(
        ["snakemake", "--cores", "1", "--until", "evaluate", "--no-hooks"],
        repo,
        {"LENET_MNIST_CACHE": str(wheel_cache)},
    )
    for pattern in (
        "models/*/*.pt",
        "results/history/*/*.csv",
        "results/metrics/*/*.json",
        "data/prepared/*/*/*.npz",
    ):
        files = sorted(path.relative_to(built) for path in built.glob(pattern))
        assert files, pattern
        assert [f for f in files if (repo / f).read_bytes() != (built / f).read_bytes()] == []


def dvc_plan(repo, env):
    """What `dvc repro` would run: the stages `dvc status` finds changed and every stage downstream of
    them (whose deps their outputs are), but check, which always checks params.yaml first."""
    import networkx as nx
    from dvc.repo import Repo

    changed = set(json.loads(run(["dvc", "status", "--json"], repo, env).stdout)) - {"check"}
    with Repo(str(repo)) as dvc:
        graph = dvc.index.graph  # an edge from each stage to each stage whose outputs it reads
        stages = {stage.name: stage for stage in graph}
        downstream = {later.name for name in changed for later in nx.ancestors(graph, stages[name])}
    return changed | downstream


def edit_source(module, old, new):
    def edit(repo, params):
        path = repo / f"src/lenet_mnist/{module}"
        assert old in path.read_text(), (module, old)
        path.write_text(path.read_text().replace(old, new, 1))

    return edit


def edit_params(change):
    def edit(repo, params):
        change(params)
        write_params(repo, params)

    return edit


def comment_everywhere(repo, params):
    """Every module's docstring edited and a comment appended to it; a description of the schema edited."""
    for path in (repo / "src/lenet_mnist").rglob("*.py"):
        text = path.read_text()
        path.write_text(('"""Edited. ' + text[3:] if text.startswith('"""') else text) + "# a comment\n")
    schema = repo / "src/lenet_mnist/params.schema.yaml"
    schema.write_text(schema.read_text().replace("description: Torch threads", "description: The torch threads"))


EVERY_SEED = {f"{run}-{seed}" for run in ("small", "larger") for seed in (0, 1)}
REPORT = {"summarize", "figures"}
DESIGN = {"design"}  # it reads every history, as DVC's directory dep does, and runs and seeds
PLOTS = {"plot@small", "plot@larger"}

# Each edit of the smoke study, made to the built study alone, and the jobs both tools then plan:
# what the edit changes, and nothing else.
EDIT_MATRIX = [
    (
        "a seed more",
        edit_params(lambda p: p.update(seeds=3)),
        {"subsample@0.005-2", "subsample@0.01-2", "prepare@none-0.005-2", "prepare@shifted-0.01-2"}
        | {f"{stage}@{run}-2" for stage in ("train", "evaluate") for run in ("small", "larger")}
        | PLOTS
        | REPORT
        | DESIGN,
    ),
    (
        "a run more",
        edit_params(
            lambda p: p["runs"].update(
                extra={"model": "lenet", "optimizer": "adam", "policy": "none", "fraction": 0.005}
            )
        ),
        {"train@extra-0", "train@extra-1", "evaluate@extra-0", "evaluate@extra-1", "plot@extra"} | REPORT | DESIGN,
    ),
    ("a comment and a docstring in every module, a description in the schema", comment_everywhere, set()),
    (
        "plot.py",
        edit_source("plot.py", "def save(fig, path, dpi=120):", "def save(fig, path, dpi=100):"),
        PLOTS | {"preview@none", "preview@shifted", "derivations", "figures", "summarize"},
    ),
    ("figures.py", edit_source("figures.py", "height=3,", "height=3.2,"), {"figures"}),
    (
        "evaluate.batch_size",
        edit_params(lambda p: p["evaluate"].update(batch_size=1000)),
        {f"evaluate@{job}" for job in EVERY_SEED} | REPORT,
    ),
    (
        "train.py's logic",
        edit_source("train.py", "VALIDATION_BATCH = 1000", "VALIDATION_BATCH = 500"),
        {f"{stage}@{job}" for stage in ("train", "evaluate") for job in EVERY_SEED} | PLOTS | REPORT | DESIGN,
    ),
]


@pytest.mark.parametrize("what, edit, planned", EDIT_MATRIX, ids=[what for what, _, _ in EDIT_MATRIX])
def test_an_edit_plans_what_it_changes_and_nothing_else_in_both(built_copy, wheel_cache, what, edit, planned):
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    edit(built_copy, yaml.safe_load((built_copy / "params.yaml").read_text()))
    run(["lenet-mnist", "check"], built_copy, env, check=False)  # what dvc repro runs first; it may ask for a rerun
    assert dvc_plan(built_copy, env) == planned, what
    assert rerun_names(snakemake_jobs(built_copy)) - {"all"} == planned, what


def times_and_bytes(repo, pattern):
    return {path: (path.stat().st_mtime_ns, digest_of(path)) for path in repo.glob(pattern)}


@pytest.mark.parametrize("engine", ["dvc", "snakemake"])
def test_a_seed_more_trains_that_seed_alone_and_touches_no_checkpoint(built_copy, wheel_cache, engine):
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    before = times_and_bytes(built_copy, "models/*/*.pt")
    params = yaml.safe_load((built_copy / "params.yaml").read_text())
    params["seeds"] = 3
    write_params(built_copy, params)
    if engine == "dvc":
        # DVC read the old job list: check rewrites it from params.yaml and asks for the same command again.
        done = run(["dvc", "repro"], built_copy, env, check=False)
        assert done.returncode != 0 and "workflow/jobs.yaml: rewritten" in done.stdout + done.stderr
        out = run(["dvc", "repro"], built_copy, env).stdout
        trained = set(re.findall(r"Running stage 'train@([^']+)'", out))
    else:
        done = run(["snakemake", "--cores", "4", "--printshellcmds"], built_copy, env)
        out = done.stdout + done.stderr
        trained = {f"{run}-{seed}" for run, seed in re.findall(r"train --log logs/train/(\w+)/(\d+)\.log", out)}
    assert trained == {"small-2", "larger-2"}
    after = times_and_bytes(built_copy, "models/*/*.pt")
    assert {path: after[path] for path in before} == before and len(after) == len(before) + 2
    if engine == "dvc":  # which resets every output's time in the pipeline's order, for Snakemake
        run(["lenet-mnist", "touch"], built_copy, env)
    assert up_to_date(built_copy, env)


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


def stage_name(name):
    return name.split("@")[0]


def test_an_experiment_becomes_a_branch_to_diff_against_main(built_copy, wheel_cache):
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    main = json.loads((built_copy / "results/metrics.json").read_text())
    run(["dvc", "exp", "run", "-S", "optimizers.adam.lr=0.003", "-n", "faster_adam"], built_copy, env)
    edited = json.loads((built_copy / "results/metrics.json").read_text())
    # DVC wrote back its own line alone (params.yaml is in the layout -S writes).
    diff = run(["git", "diff", "--unified=0", "params.yaml"], built_copy).stdout.splitlines()
    assert [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")] == [
        "-  adam: {name: adam, lr: 0.001}",
        "+  adam: {name: adam, lr: 0.003}",
    ]

    # The table of README.md: the experiment, the param it changed and the metrics that moved; of
    # workflow/jobs.yaml, DVC shows the digest alone, even in the full table.
    header = run(["dvc", "exp", "show", "--csv"], built_copy, env).stdout.splitlines()[0].split(",")
    assert "digest" in header and not any(name.startswith(("run_jobs", "prepare_jobs")) for name in header)
    readable = ["dvc", "exp", "show", "--only-changed", "--drop", r".*/|params\.yaml$", "--csv"]
    header = run(readable, built_copy, env).stdout.splitlines()[0].split(",")
    assert "optimizers.adam.lr" in header and "runs.larger.test_accuracy" in header
    assert not any(name.startswith(("runs.small", "optimizers.sgd")) or "/" in name for name in header)

    # `dvc exp show`: the experiment's params and metrics beside the baseline's.
    [workspace, baseline] = json.loads(run(["dvc", "exp", "show", "--json"], built_copy, env).stdout)
    [experiment] = baseline["experiments"]
    assert baseline["name"] == "main" and experiment["name"] == "faster_adam"
    shown = {"main": baseline["data"], "faster_adam": experiment["revs"][0]["data"]}
    assert shown["faster_adam"]["params"]["params.yaml"]["data"]["optimizers"]["adam"]["lr"] == 0.003
    for name, metrics in (("main", main), ("faster_adam", edited)):
        assert shown[name]["metrics"]["results/metrics.json"]["data"] == metrics

    # A branch from it: `dvc metrics diff` and `dvc plots diff` against main, from git alone.
    run(["dvc", "exp", "branch", "faster_adam", "edited"], built_copy, env)
    diff = json.loads(run(["dvc", "metrics", "diff", "main", "edited", "--json"], built_copy, env).stdout)
    # Only what changed: larger's mean (its n is the same), and the claims that hold it.
    diff = diff["results/metrics.json"]
    claim = "claims.smoke.larger_vs_small.test_accuracy"
    assert "runs.larger.test_accuracy" in diff and not any(key.startswith("runs.small") for key in diff)
    assert f"{claim}.diff" in diff and not any(key.endswith(".n") for key in diff)
    assert diff["runs.larger.test_accuracy"]["old"] == main["runs"]["larger"]["test_accuracy"]
    assert diff["runs.larger.test_accuracy"]["new"] == edited["runs"]["larger"]["test_accuracy"]
    assert diff[f"{claim}.diff"]["new"] == edited["claims"]["smoke"]["larger_vs_small.test_accuracy"]["diff"]
    plots = json.loads(run(["dvc", "plots", "diff", "main", "edited", "--json", "--split"], built_copy, env).stdout)
    assert set(plots["data"]) == {
        "training_loss",
        "validation_accuracy",
        "accuracy_vs_training_size",
        "results/figures/confusion.csv",
    }
    assert all(plot["revisions"] == ["main", "edited"] for [plot] in plots["data"].values())
    run(["dvc", "plots", "diff", "main", "edited"], built_copy, env)
    # Offline: vega inlined from this environment (Makefile), no script from a CDN; each revision
    # its own dash style, named in the legend.
    page = (built_copy / "dvc_plots/index.html").read_text()
    assert "vegaEmbed" in page and not re.search(r"<script[^>]*\bsrc=", page)
    revisions = '"strokeDash": {"field": "rev", "type": "nominal", "legend": null}, "shape": {"field": "rev"'
    assert page.count(revisions) == 3  # a dash style and a point shape each, and the shapes in the legend


def test_a_clone_pulls_everything_from_a_remote_and_both_tools_agree(built_copy, tmp_path, wheel_cache):
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    run(["dvc", "remote", "add", "--default", "storage", str(tmp_path / "remote")], built_copy, env)
    run(["dvc", "push"], built_copy, env)
    commit_all(built_copy, "a remote")
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(built_copy), str(clone)], tmp_path)
    run(["dvc", "pull"], clone, env)
    for path in (
        "data/MNIST/raw",
        "data/split/train.npy",
        "data/subsets/0.01/1.npz",
        "data/prepared/shifted/0.01/1.npz",
        "models/larger/1.pt",
    ):
        assert (clone / path).exists(), path
    assert (clone / "models/larger/1.pt").read_bytes() == (built_copy / "models/larger/1.pt").read_bytes()
    # The files are those of dvc.lock, but with the times of the checkout: Snakemake needs them put
    # in the pipeline's order.
    run(["lenet-mnist", "touch"], clone, env)
    assert up_to_date(clone, env)


def test_touch_refuses_outputs_that_differ_from_dvc_lock(built_copy, wheel_cache):
    (built_copy / "data/split/val.npy").unlink()
    done = run(["lenet-mnist", "touch"], built_copy, {"LENET_MNIST_CACHE": str(wheel_cache)}, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        "touch: error: dvc status: split, subsample@0.005-0, subsample@0.005-1, subsample@0.01-0, subsample@0.01-1 "
        "and 4 more differ from dvc.lock; run `dvc checkout`, `dvc pull` or `dvc repro` first"
    )
    assert "\n" not in done.stderr.strip()


def outputs_of(repo):
    """Every output file by path, with its bytes' digest."""
    return {
        str(path.relative_to(repo)): digest_of(path)
        for top in ("data", "models", "results")
        for path in sorted((repo / top).rglob("*"))
        if path.is_file()
    }


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


def every(pattern, seeds=(0, 1)):
    return [pattern.format(seed) for seed in seeds]


# The DVC cache on a real S3 server: SeaweedFS's `weed mini` from its PyPI wheel, on 127.0.0.1.
BUCKET = "lenet-mnist"


def free_port():
    """A port that nothing listens on now (weed would move silently to another one if its port were taken)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """A SeaweedFS S3 server with one identity, bound to 127.0.0.1 and stopped by its PID."""
    import secrets

    import botocore.config
    import botocore.session

    root = tmp_path_factory.mktemp("s3")
    key, secret = f"lenet{secrets.token_hex(4)}", secrets.token_hex(16)
    (root / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "lenet",
                        "credentials": [{"accessKey": key, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    (root / "data").mkdir()
    log, port = root / "weed.log", free_port()
    server = subprocess.Popen(
        [
            str(BIN / "weed"),
            "mini",
            f"-dir={root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={port}",
            f"-s3.config={root / 's3.json'}",
            f"-bucket={BUCKET}",
            # Only the S3 gateway and what it needs: no UI, WebDAV, catalogs or telemetry (no internet here).
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            # Volumes sized here, not from this machine's free disk, which differs between machines.
            "-master.volumeSizeLimitMB=256",
            "-volume.max=8",
        ],
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=botocore.config.Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1}),
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # ready when an object goes in and comes back: the bucket's first volume has been grown
            assert server.poll() is None, log.read_text()[-2000:]
            try:
                client.put_object(Bucket=BUCKET, Key="ready", Body=b"ready")
                assert client.get_object(Bucket=BUCKET, Key="ready")["Body"].read() == b"ready"
                client.delete_object(Bucket=BUCKET, Key="ready")
                break
            except Exception as error:
                assert time.monotonic() < deadline, (
                    f"no S3 round trip within 120 s ({error}):\n{log.read_text()[-2000:]}"
                )
                time.sleep(0.5)
        yield {"endpoint": endpoint, "key": key, "secret": secret, "log": log}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def use_s3_remote(repo, server, secret=None):
    """The remote in .dvc/config (committed), its credentials in .dvc/config.local (not)."""
    run(["dvc", "remote", "add", "--force", "--default", "store", f"s3://{BUCKET}/cache"], repo)
    run(["dvc", "remote", "modify", "store", "endpointurl", server["endpoint"]], repo)
    run(["dvc", "remote", "modify", "--local", "store", "access_key_id", server["key"]], repo)
    run(["dvc", "remote", "modify", "--local", "store", "secret_access_key", secret or server["secret"]], repo)


def run_against(server, cmd, cwd, env):
    """run() for a command that talks to the S3 server, with the server's log in the failure message."""
    try:
        return run(cmd, cwd, env, timeout=300)
    except (AssertionError, subprocess.TimeoutExpired) as failure:
        raise AssertionError(f"{failure}\nweed.log:\n{server['log'].read_text()[-3000:]}") from None


def snapshot(repo):
    """Every file of the working tree and DVC's cache, by path, with its bytes' digest."""
    return {
        str(path.relative_to(repo)): digest_of(path)
        for path in sorted(repo.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(repo).parts[:1] and "tmp" not in path.parts
    }


def test_the_cache_goes_through_s3_to_a_fresh_clone(built_copy, s3_server, tmp_path, wheel_cache):
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    use_s3_remote(built_copy, s3_server)
    commit_all(built_copy, "an S3 remote")
    tracked = run(["git", "ls-files"], built_copy).stdout.split()
    assert ".dvc/config.local" not in tracked
    assert not any(s3_server["secret"] in (built_copy / name).read_text(errors="ignore") for name in tracked)
    run_against(s3_server, ["dvc", "push"], built_copy, env)
    assert "in sync" in run_against(s3_server, ["dvc", "status", "--cloud"], built_copy, env).stdout

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(built_copy), str(clone)], tmp_path)
    use_s3_remote(clone, s3_server)
    run_against(s3_server, ["dvc", "pull"], clone, env)
    run(["lenet-mnist", "touch"], clone, env)
    assert up_to_date(clone, env)
    again = tmp_path / "again"  # the same in one command
    run(["git", "clone", "-q", str(built_copy), str(again)], tmp_path)
    use_s3_remote(again, s3_server)
    run_against(s3_server, ["lenet-mnist", "pull"], again, env)
    assert up_to_date(again, env)
    # Every output of the pipeline (not the report, which `snakemake --report` writes beside them).
    outputs = [
        path.relative_to(built_copy)
        for top in ("data", "models", "results")
        for path in (built_copy / top).rglob("*")
        if path.is_file() and path.name not in (".snakemake_timestamp", "report.html")
    ]
    assert any(str(path).endswith(".pt") for path in outputs)
    for restored in (clone, again):
        assert [path for path in outputs if (restored / path).read_bytes() != (built_copy / path).read_bytes()] == []

    # A local-only change: dvc status --cloud names what the remote lacks.
    params = yaml.safe_load((built_copy / "params.yaml").read_text())
    params["runs"]["small"]["epochs"] = 2
    write_params(built_copy, params)
    run(["dvc", "repro"], built_copy, env)
    missing = json.loads(run_against(s3_server, ["dvc", "status", "--cloud", "--json"], built_copy, env).stdout)
    assert {"models/small/0.pt", "models/small/1.pt"} <= set(missing) and set(missing.values()) == {"new"}


@pytest.mark.parametrize("fault", ["wrong credentials", "server down"])
def test_a_failed_push_or_pull_is_one_line_and_changes_nothing(built_copy, s3_server, fault, wheel_cache):
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    if fault == "wrong credentials":
        use_s3_remote(built_copy, s3_server, secret="not" + s3_server["secret"])
    else:
        use_s3_remote(built_copy, {**s3_server, "endpoint": f"http://127.0.0.1:{free_port()}"})
    before = snapshot(built_copy)
    cause = "Forbidden" if fault == "wrong credentials" else "Could not connect to the endpoint URL"
    for command in ("push", "pull"):
        done = run(["lenet-mnist", command], built_copy, env, check=False)
        assert done.returncode == 1 and done.stdout == "", done.stderr
        [line] = done.stderr.splitlines()
        assert f" lenet_mnist: {command}: error: dvc {command}: ERROR: " in line and cause in line, line
    assert snapshot(built_copy) == before


def test_queued_experiments_run_side_by_side(built_copy, wheel_cache):
    """`dvc exp run --queue` twice, `dvc queue start -j 2`: both finish, with their own metrics."""
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    rates = {"adam_2": 0.002, "adam_3": 0.003}
    for name, lr in rates.items():
        run(["dvc", "exp", "run", "--queue", "-S", f"optimizers.adam.lr={lr}", "-n", name], built_copy, env)
    try:
        assert (
            "Started '2' new experiments task queue workers"
            in run(["dvc", "queue", "start", "-j", "2"], built_copy, env).stdout
        )
        deadline = time.monotonic() + 300
        while re.search(r"\b(Queued|Running)\b", status := run(["dvc", "queue", "status"], built_copy, env).stdout):
            assert time.monotonic() < deadline, status
            time.sleep(2)
        assert all(re.search(rf"{name}\s+\S+ \S+\s+Success", status) for name in rates), status
    finally:
        run(["dvc", "queue", "stop", "--kill"], built_copy, env, check=False)
    [_, baseline] = json.loads(run(["dvc", "exp", "show", "--json"], built_copy, env).stdout)
    shown = {e["name"]: e["revs"][0]["data"] for e in baseline["experiments"]}
    assert set(shown) == set(rates)
    accuracy = {
        name: data["metrics"]["results/metrics.json"]["data"]["runs"]["larger"]["test_accuracy"]
        for name, data in shown.items()
    }
    for name, lr in rates.items():
        assert shown[name]["params"]["params.yaml"]["data"]["optimizers"]["adam"]["lr"] == lr
    main = json.loads((built_copy / "results/metrics.json").read_text())["runs"]["larger"]["test_accuracy"]
    assert len({main, *accuracy.values()}) == 3  # each learning rate trained its own model


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
