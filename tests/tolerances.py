"""Tolerances of the numerical tests, from floating-point error analysis, never from what passed on
one machine: oneDNN and MKL pick other kernels on each ISA (AVX2, AVX-512, AMX), which add in
other orders, so that only a bound that holds for every order is a tolerance.

u is the unit roundoff (eps / 2) and gamma(n) = n u / (1 - n u). A sum of n terms, added in any
order, is within gamma(n - 1) * sum |x_i| of the exact sum; a dot product of length n, within
gamma(n) * sum |x_i y_i| (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., 3.1
and 4.2). Two computations of one quantity, each within a bound of the exact value, are within
twice that bound of each other."""

import torch

# The float64 checks of Problem Sets 1-3 compare relative to the result's largest magnitude; on
# their random normal cases, drawn from the stage's seed, the terms' magnitudes add up to at most
# this many times that (their sums do not cancel to nothing): the condition of the sums.
CONDITION = 50


def unit_roundoff(dtype):
    return torch.finfo(dtype).eps / 2


def gamma(n, dtype):
    nu = n * unit_roundoff(dtype)
    return nu / (1 - nu)


def two_sums(n, magnitude, dtype=torch.float32):
    """Two computations of one n-term sum whose terms' magnitudes add up to `magnitude`."""
    return 2 * gamma(n - 1, dtype) * magnitude


def relative_check(n, dtype=torch.float64):
    """A relative difference between two n-term computations of one result (see CONDITION)."""
    return 2 * gamma(n, dtype) * CONDITION
