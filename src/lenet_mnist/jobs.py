"""The jobs that params.yaml defines, for both tools: a subset per (fraction, seed), a prepared
training set per (policy, fraction, seed), and a training and an evaluation job per (run, seed).

Each is keyed by what it depends on: two runs that differ only in model or optimizer share their
prepared sets. The Snakefile expands its wildcards from these lists; dvc.yaml loops over the same
lists, which `lenet-mnist check` writes to workflow/jobs.yaml (DVC's templating cannot nest loops,
nor filter a matrix).

A stage given a key on its command line checks it here first: a job that params.yaml does not
define is refused in one line, before anything is read."""

from lenet_mnist.errors import LenetError


def checked_run(params, run):
    if run not in params["runs"]:
        raise LenetError(f"--run {run}: not a run of params.yaml (allowed: {', '.join(params['runs'])})")
    return run


def checked_policy(params, policy):
    if policy not in params["policies"]:
        raise LenetError(f"--policy {policy}: not a policy of params.yaml (allowed: {', '.join(params['policies'])})")
    return policy


def fraction_of(params, spelled):
    """A fraction of subsample.fractions, from its spelling there (the spelling in the job's paths)."""
    listed = {str(f): f for f in params["subsample"]["fractions"]}
    if spelled not in listed:
        raise LenetError(f"--fraction {spelled}: not in subsample.fractions (allowed: {', '.join(listed)})")
    return listed[spelled]


def checked_job(params, run, seed):
    """A (run, seed) that params.yaml trains."""
    seeds = run_seeds(params, checked_run(params, run))
    if seed not in seeds:
        raise LenetError(
            f"--seed {seed}: run {run} is trained with seeds 0 to {seeds[-1]} (seeds, studies.*.seeds, claims.*.seeds)"
        )
    return run, seed


def run_seeds(params, run):
    """The seeds 0 .. n-1 of a run: the top-level count, or more where a study listing it or a
    claim naming it asks."""
    counts = [params["seeds"]]
    for study in params["studies"].values():
        if run in study["runs"] and "seeds" in study:
            counts.append(study["seeds"])
        counts += [c["seeds"] for c in study.get("claims", []) if run in (c["run"], c["reference"]) and "seeds" in c]
    return list(range(max(counts)))


def trainings(params):
    """(run, seed) of every training job, in params.yaml's order of runs."""
    return [(run, seed) for run in params["runs"] for seed in run_seeds(params, run)]


def prepared_sets(params):
    """(policy, fraction, seed) of every prepared training set, sorted, each once."""
    found = {
        (params["runs"][run]["policy"], str(params["runs"][run]["fraction"]), seed) for run, seed in trainings(params)
    }
    return sorted(found)


def subsets(params):
    """(fraction, seed) of every subset a prepared set reads, sorted, each once."""
    return sorted({(fraction, seed) for _, fraction, seed in prepared_sets(params)})


def previews(params):
    """(policy, fraction): each policy's preview, drawn from seed 0's set at its smallest fraction."""
    smallest = {}
    for policy, fraction, _ in prepared_sets(params):
        smallest[policy] = min(smallest.get(policy, fraction), fraction, key=float)
    return sorted(smallest.items())


def subset_path(fraction, seed):
    return f"data/subsets/{fraction}/{seed}.npz"


def prepared_path(policy, fraction, seed):
    return f"data/prepared/{policy}/{fraction}/{seed}.npz"


def dvc_vars(params):
    """What dvc.yaml's foreach loops read: a mapping per stage, keyed as DVC names its stages. Every
    value that reaches a command comes from here, validated, not from params.yaml itself."""

    def run_job(run, seed):
        spec = params["runs"][run]
        return {
            "run": run,
            "seed": seed,
            "prepared": prepared_path(spec["policy"], str(spec["fraction"]), seed),
            "model": spec["model"],
            "optimizer": spec["optimizer"],
            "threads": params["compute"]["threads"],
        }

    return {
        "subset_jobs": {f"{f}-{s}": {"fraction": f, "seed": s} for f, s in subsets(params)},
        "prepare_jobs": {f"{p}-{f}-{s}": {"policy": p, "fraction": f, "seed": s} for p, f, s in prepared_sets(params)},
        "preview_jobs": {p: {"policy": p, "fraction": f} for p, f in previews(params)},
        "run_jobs": {f"{run}-{seed}": run_job(run, seed) for run, seed in trainings(params)},
        "plot_jobs": {run: {"run": run} for run in params["runs"]},
    }
