"""End to end: the smoke study built, its report, and what each edit rebuilds in both tools."""

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml
from conftest import SMOKE_PARAMS, commit_all, copy_repo, use_params
from e2e import (
    check_outputs,
    dvc_index,
    report_numbers,
    rerun_names,
    run,
    snakemake_jobs,
    up_to_date,
    write_params,
)

from lenet_mnist.files import digest_of
from lenet_mnist.formats import format_ci, format_diff
from lenet_mnist.params import load_params

pytestmark = pytest.mark.e2e


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
        "charts.py",  # the drawing library: every stage that draws, and what reads their outputs
        edit_source("charts.py", "def save(fig, path, dpi=120):", "def save(fig, path, dpi=100):"),
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
