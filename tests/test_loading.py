"""What the code may deserialise: a scan of its source, so that a new loader cannot slip in."""

import ast

from conftest import ROOT

SOURCES = sorted((ROOT / "src").rglob("*.py"))


def calls():
    """(file, dotted name of the callee, call node) of every call in the package."""
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                yield path.name, ast.unparse(node.func), node


def keyword(call, name):
    return next((ast.literal_eval(k.value) for k in call.keywords if k.arg == name), None)


def test_every_torch_load_is_weights_only():
    loads = [(path, call) for path, name, call in calls() if name == "torch.load"]
    assert loads, "no torch.load found: the scan is looking in the wrong place"
    for path, call in loads:
        assert keyword(call, "weights_only") is True, f"{path}:{call.lineno}: torch.load without weights_only=True"


def test_nothing_is_unpickled_except_through_the_numpy_only_unpickler():
    pickling = {
        "pickle.load",
        "pickle.loads",
        "pickle.Unpickler",
        "pd.read_pickle",
        "pandas.read_pickle",
        "joblib.load",
        "dill.load",
        "cloudpickle.load",
    }
    found = [(path, name, call.lineno) for path, name, call in calls() if name in pickling]
    assert found == [], found
    for path, name, call in calls():
        if name in ("np.load", "numpy.load"):
            assert keyword(call, "allow_pickle") is False, f"{path}:{call.lineno}: np.load without allow_pickle=False"
    # The one unpickler: a subclass that admits numpy's array classes only (tests in test_download).
    subclasses = [
        (path.name, node.name)
        for path in SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "pickle.Unpickler" for b in node.bases)
    ]
    assert subclasses == [("download.py", "NumpyOnlyUnpickler")]
