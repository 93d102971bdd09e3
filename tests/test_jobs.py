import copy
from unittest.mock import ANY

import pytest
import yaml
from conftest import SMOKE_PARAMS

from lenet_mnist.check import JOBS_FILE, check
from lenet_mnist.errors import LenetError
from lenet_mnist.jobs import dvc_vars, prepared_sets, previews, run_seeds, subsets, trainings
from lenet_mnist.params import load_params


@pytest.fixture
def params():
    return copy.deepcopy(load_params(SMOKE_PARAMS))


def test_a_claim_trains_both_its_runs_with_the_seeds_it_asks_for(params):
    params["studies"]["smoke"]["claims"][0]["seeds"] = 4
    assert run_seeds(params, "larger") == run_seeds(params, "small") == [0, 1, 2, 3]


def test_a_run_trains_with_the_largest_seed_count_of_the_studies_that_list_it(params):
    params["studies"]["smoke_sizes"]["seeds"] = 5
    params["studies"]["smoke"]["seeds"] = 3
    params["studies"]["smoke_sizes"]["runs"] = ["larger"]
    assert run_seeds(params, "larger") == [0, 1, 2, 3, 4] and run_seeds(params, "small") == [0, 1, 2]
    params["seeds"] = 6  # the top-level count is a floor
    assert run_seeds(params, "small") == list(range(6))


def test_jobs_are_keyed_by_what_they_depend_on(params):
    # A run that differs only in its model and optimizer shares small's prepared sets and subsets.
    params["runs"]["twin"] = {**params["runs"]["small"], "model": "lenet_relu_max", "optimizer": "adam"}
    assert trainings(params) == [(run, seed) for run in ("small", "larger", "twin") for seed in (0, 1)]
    assert prepared_sets(params) == [(p, f, s) for p, f in (("none", "0.005"), ("shifted", "0.01")) for s in (0, 1)]
    assert subsets(params) == [(f, s) for f in ("0.005", "0.01") for s in (0, 1)]
    assert previews(params) == [("none", "0.005"), ("shifted", "0.01")]
    jobs = dvc_vars(params)["run_jobs"]
    assert jobs["twin-1"] == {
        "run": "twin",
        "seed": 1,
        "prepared": "data/prepared/none/0.005/1.npz",
        "model": "lenet_relu_max",
        "optimizer": "adam",
        "threads": params["compute"]["threads"],
    }


def test_check_rewrites_the_jobs_of_params_and_asks_for_a_second_call(params, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").symlink_to(SMOKE_PARAMS.parents[2] / "src")  # the code whose fingerprints it writes
    with pytest.raises(LenetError, match="workflow/jobs.yaml: rewritten, .* run the same dvc command again"):
        check(params)
    assert yaml.safe_load((tmp_path / JOBS_FILE).read_text()) == {"digest": ANY, **dvc_vars(params)}
    assert sorted(p.name for p in (tmp_path / "workflow/fingerprints").iterdir())
    check(params)  # nothing changed: no error
    params["seeds"] = 3
    with pytest.raises(LenetError, match="rewritten"):
        check(params)
    assert "small-2" in yaml.safe_load((tmp_path / JOBS_FILE).read_text())["run_jobs"]
