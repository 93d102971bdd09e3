"""The code a stage runs: its module and everything that module imports from this package, found
in the source (AST), so that both tools list a stage's code inputs and rerun it when any changes.
The CLI's dispatch (cli.py) parses arguments and calls the stage: it is left out, so that a new
subcommand reruns nothing. The schema is in the inputs of every stage: its defaults fill in what
params.yaml leaves out, and both tools record params.yaml as written.

Download is the exception, with no code inputs: its output is fixed by the official md5s, so no
code edit can change it. (Snakemake reads the raw files as ancient; a download rerun in the same
run would keep it from looking at the other stages' own inputs, Snakemake's masking of the jobs
after a job that reruns, and an edit to errors.py, say, would take two runs.)"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent
SCHEMA = f"src/{PACKAGE.name}/params.schema.yaml"


def imported(module):
    """The modules of this package that `module` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE.name:
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith(f"{PACKAGE.name}.")}
    return found


def closure(module):
    """The source files of `module` and of every module it imports, directly or not, sorted."""
    seen, todo = set(), [module]
    while todo:
        if (name := todo.pop()) not in seen:
            seen.add(name)
            todo.extend(imported(name))
    return [f"src/{PACKAGE.name}/{name}.py" for name in sorted(seen)]


def code_inputs(stage):
    """What both tools list as a stage's code: its module's closure and the params schema."""
    return [] if stage == "download" else [*closure(stage), SCHEMA]
