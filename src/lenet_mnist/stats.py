"""The statistics of the studies, a library: means with Student-t intervals over seeds, paired
tests of a run against its reference (a difference or an equivalence margin), exact power of the
paired t-test from the noncentral t distribution, the seeds a claim needs, and Holm's correction
within a family of claims."""

import math

from scipy import integrate, stats

ALPHA = 0.05  # the familywise error rate of a study's claims, and 1 - the confidence of intervals


def mean_ci(values, confidence=1 - ALPHA):
    """Mean and Student-t confidence interval over seeds; no interval from a single seed."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return {"mean": mean, "ci95_low": None, "ci95_high": None, "n": n}
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "ci95_low": mean - half, "ci95_high": mean + half, "n": n}


def sd_of(values):
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def paired_test(differences, margin=None, alpha=ALPHA):
    """The paired t-test of run minus reference over seeds: the mean difference, its sd, its
    (1 - alpha) interval and the two-sided p of 'no difference'; with an equivalence margin, the
    p of the two one-sided tests (TOST) that the difference lies within +-margin instead. Equal
    differences on every seed (sd 0) are exact: p is 0 or 1."""
    n = len(differences)
    stat = mean_ci(differences, 1 - alpha)
    if n < 2:
        return {**stat, "sd": None, "p": None}
    sd = sd_of(differences)
    mean = stat["mean"]
    if sd == 0:
        if margin is None:
            p = 0.0 if mean != 0 else 1.0
        else:
            p = 0.0 if abs(mean) < margin else 1.0
        return {**stat, "sd": 0.0, "p": p}
    se = sd / math.sqrt(n)
    if margin is None:
        p = 2 * float(stats.t.sf(abs(mean) / se, n - 1))
    else:  # both one-sided nulls, difference <= -margin and >= +margin, must be rejected
        p = max(float(stats.t.sf((mean + margin) / se, n - 1)), float(stats.t.sf((margin - mean) / se, n - 1)))
    return {**stat, "sd": sd, "p": p}


def _over_chi2(df, integrand):
    """E[integrand(sqrt(V / df))] for V ~ chi-square(df): the sample sd over the true sd."""

    def f(v):
        return integrand(math.sqrt(v / df)) * stats.chi2.pdf(v, df)

    low, high = stats.chi2.ppf([1e-12, 1 - 1e-12], df)  # the rest weighs less than float64 resolves
    value, _ = integrate.quad(f, low, high, limit=200, epsabs=1e-12, epsrel=1e-10)
    return value


def power(n, effect, sd, alpha=ALPHA, margin=None):
    """The exact probability that n paired seeds reach the claim's verdict when the differences
    are normal with mean `effect` and sd `sd`. Without a margin: the two-sided t-test at level
    alpha rejects 'no difference' (the noncentral t with n - 1 degrees of freedom and
    noncentrality sqrt(n) effect / sd beyond +-t(1 - alpha/2)). With a margin: both one-sided
    tests of TOST reject, which puts the (1 - 2 alpha) interval inside +-margin. Computed by
    integrating the normal over the chi-square of the sample variance, not from scipy's nct."""
    if n < 2:
        return 0.0
    df = n - 1
    if sd == 0:
        return float(effect != 0) if margin is None else float(abs(effect) < margin)
    root_n = math.sqrt(n)
    norm = stats.norm.cdf
    if margin is None:
        c = float(stats.t.ppf(1 - alpha / 2, df))
        shift = root_n * effect / sd
        return _over_chi2(df, lambda r: norm(shift - c * r) + norm(-shift - c * r))
    c = float(stats.t.ppf(1 - alpha, df))
    upper, lower = root_n * (margin - effect) / sd, root_n * (margin + effect) / sd
    return _over_chi2(df, lambda r: max(0.0, norm(upper - c * r) - norm(-lower + c * r)))


def sd_upper(sd, n, confidence=0.8):
    """An upper confidence bound of a true sd from a pilot's sample sd over n seeds (the
    chi-square interval of the variance): sizing from a pilot's sd itself gives too few seeds
    about half the time."""
    return sd * math.sqrt((n - 1) / float(stats.chi2.ppf(1 - confidence, n - 1)))


def seeds_needed(effect, sd, alpha, target, most, margin=None):
    """The fewest seeds, 2 to `most`, whose exact power reaches `target`; None if none does."""
    return next((n for n in range(2, most + 1) if power(n, effect, sd, alpha, margin) >= target), None)


def holm(pvalues):
    """Holm's step-down adjusted p-values (the same order as given): the k-th smallest times the
    claims not yet rejected before it, kept monotone and at most 1."""
    m = len(pvalues)
    adjusted, running = [None] * m, 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted
