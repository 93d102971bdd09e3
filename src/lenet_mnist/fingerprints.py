"""The code a stage runs, and a fingerprint of what it means.

A stage's code is its module and every module that module imports from this package, found in the
source (AST), and the params schema, whose defaults fill in what params.yaml leaves out. Both tools
depend not on those files but on the stage's fingerprint, workflow/fingerprints/<stage>: a hash of
each file's syntax tree without docstrings (comments and layout are not in it) and of the schema
without its descriptions. It is rewritten only when one of those changes, so that an edit that
changes no meaning reruns nothing and one that does reruns exactly the stages whose code holds it.
The CLI (cli.py) parses the arguments that the stage's declaration (stages.py) lists and calls its
function; both are left out, so that a new subcommand reruns nothing. A stage checks the keys it
is given (jobs.py) itself, so those checks are in its closure.

Download has no fingerprint: its output is fixed by the official md5s, so no code edit can change
it. (Snakemake reads the raw files as ancient; a download rerun in the same run would keep it from
looking at the other stages' own inputs, and an edit to errors.py, say, would take two runs.)"""

import ast
import hashlib
import json
from pathlib import Path

import yaml

from lenet_mnist.files import write_bytes
from lenet_mnist.stages import BY_NAME, FINGERPRINTED

NAME = Path(__file__).parent.name
SOURCE = f"src/{NAME}"  # in the checkout, as both tools see it: what they hash is what is edited
FINGERPRINTS = "workflow/fingerprints"
PROSE = {"description", "title", "$comment", "examples"}  # schema keys that change no value


def source(root, module):
    return Path(root) / SOURCE / f"{module}.py"


def imported(module, root="."):
    """The modules of this package that `module` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(source(root, module).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == NAME:
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith(f"{NAME}.")}
    return found


def closure(module, root="."):
    """The modules `module` imports, directly or not, and itself, sorted."""
    seen, todo = set(), [module]
    while todo:
        if (name := todo.pop()) not in seen:
            seen.add(name)
            todo.extend(imported(name, root))
    return sorted(seen)


def code_meaning(source):
    """The syntax tree of Python source without its docstrings, as text."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def schema_meaning(text):
    """The schema without its prose, as canonical JSON."""

    def strip(node):
        if isinstance(node, dict):
            return {key: strip(value) for key, value in node.items() if key not in PROSE}
        return [strip(value) for value in node] if isinstance(node, list) else node

    return json.dumps(strip(yaml.safe_load(text)), sort_keys=True)


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(stage, root="."):
    """The text of a stage's fingerprint file: a line per file of its code (its declared module's
    closure, stages.py), with its meaning's hash."""
    lines = [
        f"{SOURCE}/{name}.py {sha256(code_meaning(source(root, name).read_text()))}"
        for name in closure(BY_NAME[stage].module, root)
    ]
    schema = Path(root) / SOURCE / "params.schema.yaml"
    lines.append(f"{SOURCE}/{schema.name} {sha256(schema_meaning(schema.read_text()))}")
    header = f"# What stage {stage} runs, by meaning (docstrings, comments and prose left out): lenet-mnist check\n"
    return header + "\n".join(lines) + "\n"


def fingerprint_path(stage):
    return f"{FINGERPRINTS}/{stage}"


def write_if_changed(path, text):
    """Write `text` to `path` unless it holds it already (so that its time, which Snakemake compares,
    moves only with its content). Whether it was written."""
    path = Path(path)
    if path.exists() and path.read_text() == text:
        return False
    write_bytes(path, text.encode())
    return True


def write_fingerprints(root="."):
    """Each stage's fingerprint, rewritten where its code's meaning changed; the stages rewritten."""
    return [
        stage
        for stage in FINGERPRINTED
        if write_if_changed(Path(root) / fingerprint_path(stage), fingerprint(stage, root))
    ]
