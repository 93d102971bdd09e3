"""The declarations of stages.py against the Snakefile's rules and dvc.yaml's stages, and a stage
added as docs/stages.md shows, built by both tools."""

import json
import re
import shlex

import numpy as np
import pytest
from conftest import ROOT, SMOKE_PARAMS, commit_all, copy_repo, use_params
from e2e import dvc_index, run, snakemake_jobs, stage_name

from lenet_mnist.check import JOBS_FILE
from lenet_mnist.cli import build_parser
from lenet_mnist.fingerprints import fingerprint_path
from lenet_mnist.stages import BY_NAME, COMMANDS, FINGERPRINTED, STAGES

pytestmark = pytest.mark.e2e


def flags_of(cmd, name):
    """The flags of a `lenet-mnist <name>` command line and their values, less --log."""
    argv = shlex.split(cmd)
    assert argv[:2] == ["lenet-mnist", name], cmd
    pairs = dict(zip(argv[2::2], argv[3::2]))
    assert len(pairs) * 2 == len(argv) - 2, cmd
    pairs.pop("--log")
    return pairs


def test_every_command_is_a_subcommand_with_its_declared_arguments():
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices
    assert list(subcommands) == [command.name for command in COMMANDS]
    for command in COMMANDS:
        options = {o for action in subcommands[command.name]._actions for o in action.option_strings}
        positional = {a.dest for a in subcommands[command.name]._actions if not a.option_strings}
        assert {a.flag for a in command.args} <= options | positional, command.name


@pytest.fixture(scope="module")
def smoke_copy(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("stages") / "repo")
    use_params(repo, SMOKE_PARAMS)
    run(["lenet-mnist", "check"], repo, check=False)  # writes jobs.yaml, which dvc.yaml loops over
    return repo


def test_each_dvc_stage_runs_its_declared_command_on_its_declared_files(smoke_copy):
    seen = set()
    for stage in dvc_index(smoke_copy):
        name = stage_name(stage.name)
        command, seen = BY_NAME[name], seen | {name}
        assert command.stage, name
        outs = {str(out.def_path) for out in stage.outs}
        deps = {str(dep.def_path) for dep in stage.deps}
        if name == "check":  # the fingerprints it writes, and the jobs file
            assert outs == {JOBS_FILE, *map(fingerprint_path, FINGERPRINTED)}
            continue
        flags = flags_of(stage.cmd, name)
        assert set(flags) == {arg.flag for arg in command.args}, name
        assert {flags[arg.flag] for arg in command.outputs} == outs, name
        assert {flags[arg.flag] for arg in command.inputs} <= deps, (
            name
        )  # summarize reads the checks of the derivations' directory
        assert (fingerprint_path(name) in deps) == command.fingerprinted, name
        sections = {p.split(".")[0] for dep in stage.deps if str(dep.def_path) == "params.yaml" for p in dep.params}
        assert sections == set(command.params), name
    assert seen == {command.name for command in STAGES}


def test_each_snakemake_rule_is_a_declared_stage_with_its_declared_flags(smoke_copy):
    jobs = snakemake_jobs(smoke_copy, "--forceall")
    for job in jobs:
        command = BY_NAME[job["rule"]]
        flags = flags_of(job["cmd"], job["rule"])
        assert set(flags) == {arg.flag for arg in command.args}, job["rule"]
        assert {flags[arg.flag] for arg in command.outputs} == set(job["outputs"]), job["rule"]
    # check's work is done as the Snakefile is read
    assert {job["rule"] for job in jobs} == {command.name for command in STAGES} - {"check"}


def examples(text):
    """The blocks of docs/stages.md that follow an `<!-- example: NAME -->` line, by NAME."""
    return dict(re.findall(r"<!-- example: (\S+) -->\n```\w+\n(.*?)```", text, flags=re.S))


def test_a_stage_added_as_the_docs_show_is_built_by_both_tools(built_copy, wheel_cache):
    """In a copy of the built smoke study: its raw files and split are there, and up to date in both."""
    blocks = examples((ROOT / "docs/stages.md").read_text())
    assert set(blocks) == {"src/lenet_mnist/count.py", "COMMANDS", "workflow/rules/count.smk", "dvc.yaml"}
    repo = built_copy
    (repo / "src/lenet_mnist/count.py").write_text(blocks["src/lenet_mnist/count.py"])
    stages = repo / "src/lenet_mnist/stages.py"
    stages.write_text(stages.read_text().replace("\n]\n\nBY_NAME", "\n" + blocks["COMMANDS"] + "]\n\nBY_NAME", 1))
    (repo / "workflow/rules/count.smk").write_text(blocks["workflow/rules/count.smk"])
    snakefile = repo / "Snakefile"
    snakefile.write_text(
        snakefile.read_text().replace(
            'include: "workflow/rules/report.smk"\n',
            'include: "workflow/rules/report.smk"\ninclude: "workflow/rules/count.smk"\n',
        )
    )
    dvc_yaml = repo / "dvc.yaml"
    stage_text = blocks["dvc.yaml"]
    text = dvc_yaml.read_text().replace("\nplots:\n", "\n" + stage_text + "plots:\n", 1)
    out = "      - workflow/fingerprints/derivations: {cache: false, persist: true}\n"
    dvc_yaml.write_text(text.replace(out, out + out.replace("derivations", "count"), 1))
    commit_all(repo, "count")

    env = {"PYTHONPATH": str(repo / "src"), "LENET_MNIST_CACHE": str(wheel_cache)}  # the copy's package
    assert "images per class" in run(["lenet-mnist", "count", "--help"], repo, env).stdout
    out = run(["snakemake", "--cores", "2", "results/counts.json"], repo, env)
    assert re.findall(r"^(?:local)?rule (\w+):", out.stderr, flags=re.M) == ["count"]  # the new stage alone
    by_snakemake = json.loads((repo / "results/counts.json").read_text())
    assert (repo / "workflow/fingerprints/count").read_text().splitlines()[1].startswith("src/lenet_mnist/count.py")
    (repo / "results/counts.json").unlink()
    assert "Running stage 'count'" in run(["dvc", "repro", "count"], repo, env).stdout
    assert json.loads((repo / "results/counts.json").read_text()) == by_snakemake
    assert sum(by_snakemake.values()) == len(np.load(repo / "data/split/train.npy"))
