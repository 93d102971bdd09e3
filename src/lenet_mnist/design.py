"""Stage `design`: the validation phase. Each claim of params.yaml is sized from its runs' pilot
seeds (design.pilot_seeds), read on the validation split or from the training loss and never from
the test set (claims.validation_value), and from the drift a retrain on another machine type
brings (benchmarks/drift.json, `make bench-drift`).

The sd that sizes a claim is an upper confidence bound of the pilot's sd of the paired
differences (stats.sd_upper) with the drift added: sqrt(sd_up^2 + 2 drift^2), as the run's and the
reference's retrains each drift. A claim needs the fewest seeds whose exact power reaches
design.power at the pilot's mean difference and at level alpha / m, Holm's first step, m the
study's claims. One that needs more than design.max_seeds, or is trained with fewer seeds than it
needs, is exploratory: summarize gives its interval and no verdict."""

import logging
import math

from lenet_mnist.claims import key, validation_value
from lenet_mnist.errors import LenetError
from lenet_mnist.files import write_json
from lenet_mnist.jobs import run_seeds
from lenet_mnist.records import history_of, read_json
from lenet_mnist.stats import ALPHA, mean_ci, power, sd_of, sd_upper, seeds_needed

log = logging.getLogger(__name__)


def drift_of(claim, jobs, drift_path):
    """The root mean square, over the retrained jobs that have the claim's metric, of how far an
    AVX2 retrain moved it; one job's drift, not a pair's."""
    moved = [
        validation_value(claim, job["avx2"]) - validation_value(claim, job["native"])
        for job in jobs.values()
        if claim["metric"] != "train_loss" or len(job["native"]) >= claim["at"]
    ]
    if not moved:
        raise LenetError(
            f"{drift_path}: no retrained job reaches epoch {claim['at']}, so the drift of this claim's metric is "
            "unmeasured (retrain a longer run: make bench-drift)"
        )
    return math.sqrt(math.fsum(m * m for m in moved) / len(moved))


def size_claim(params, history_dir, claim, jobs, drift_path, alpha):
    spec = params["design"]
    pilot = range(spec["pilot_seeds"])
    values = {
        run: [validation_value(claim, history_of(params, history_dir, run, seed)) for seed in pilot]
        for run in (claim["run"], claim["reference"])
    }
    differences = [a - b for a, b in zip(values[claim["run"]], values[claim["reference"]])]
    pilot_stat = mean_ci(differences)
    sd = sd_of(differences)
    drift = drift_of(claim, jobs, drift_path)
    planned_sd = math.sqrt(sd_upper(sd, len(differences), spec["sd_confidence"]) ** 2 + 2 * drift**2)
    effect, margin = pilot_stat["mean"], claim.get("margin")
    needed = seeds_needed(effect, planned_sd, alpha, spec["power"], spec["max_seeds"], margin)
    seeds = min(len(run_seeds(params, claim["run"])), len(run_seeds(params, claim["reference"])))
    return {
        "run": claim["run"],
        "reference": claim["reference"],
        "metric": claim["metric"],
        "at": claim.get("at"),
        "expect": claim["expect"],
        "margin": margin,
        "pilot": {
            **pilot_stat,
            "sd": sd,
            "run_mean": mean_ci(values[claim["run"]])["mean"],
            "reference_mean": mean_ci(values[claim["reference"]])["mean"],
        },
        "drift": drift,
        "planned_sd": planned_sd,
        "alpha": alpha,
        "seeds_needed": needed,
        "seeds": seeds,
        "power": power(seeds, effect, planned_sd, alpha, margin),
        "phase": "confirmatory" if needed is not None and seeds >= needed else "exploratory",
    }


def design(params, history_dir, drift_path, out_path):
    drift = read_json(drift_path, "the drift measured by lenet-mnist bench-drift")
    jobs = drift.get("jobs") if isinstance(drift, dict) else None
    if not jobs:
        raise LenetError(f"{drift_path}: no retrained jobs (make bench-drift measures them)")
    claims = {}
    for study, spec in params["studies"].items():
        stated = spec.get("claims", [])
        alpha = ALPHA / len(stated) if stated else ALPHA
        claims[study] = {key(c): size_claim(params, history_dir, c, jobs, drift_path, alpha) for c in stated}
    write_json(
        out_path,
        {
            "pilot_seeds": params["design"]["pilot_seeds"],
            "power": params["design"]["power"],
            "max_seeds": params["design"]["max_seeds"],
            "drift": {"machine": drift.get("machine"), "when": drift.get("when"), "jobs": sorted(jobs)},
            "claims": claims,
        },
    )
    sized = [c for study in claims.values() for c in study.values()]
    log.info(
        "%d claims: %d confirmatory, %d exploratory -> %s",
        len(sized),
        sum(c["phase"] == "confirmatory" for c in sized),
        sum(c["phase"] == "exploratory" for c in sized),
        out_path,
    )
