"""Stratified estimators of accuracy and area (Olofsson et al. 2014, eqs. 2-10 and 13).

Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014).
Good practices for estimating area and assessing accuracy of land change. Remote Sensing of
Environment 148, 42-57.

A map's pixel counts are a biased estimate of each class's area: every omission and commission
moves area between classes. With a stratified random sample whose strata are the map classes,
the sample counts ``n_ij`` (map class i, reference class j) and the strata weights ``W_i`` (the
share of the map's area in class i) give unbiased estimates of the area proportions and of the
accuracies, with standard errors:

- ``p_ij = W_i n_ij / n_i.`` (eq. 4, 9), the error matrix in area proportions;
- overall accuracy ``O = sum_j p_jj``, ``V(O) = sum_i W_i² U_i (1 - U_i) / (n_i. - 1)`` (eq. 1, 5);
- user's accuracy ``U_i = n_ii / n_i.``, ``V(U_i) = U_i (1 - U_i) / (n_i. - 1)`` (eq. 2, 6);
- producer's accuracy ``P_j = p_jj / p_.j`` with the variance of eq. 7 (weights in place of the
  pixel counts N_i., to which it is invariant);
- area proportion ``p_.k = sum_i W_i n_ik / n_i.``, ``S(p_.k)² = sum_i W_i² (n_ik / n_i.)
  (1 - n_ik / n_i.) / (n_i. - 1)`` (eq. 9, 10); area = total area × proportion.

95 % confidence intervals are ``1.96 × S`` (the half-width). A stratum sampled once has no
variance estimate (NaN); a stratum with area but no sample makes every estimate undefined, and
:func:`check_strata` says so before anything is computed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.errors import UserError

Z95 = 1.96
"""The normal quantile of a two-sided 95 % interval, rounded as Olofsson et al. (2014) do."""


@dataclass
class StratifiedEstimates:
    """Area-weighted figures of one stratified sample (NaN where undefined).

    Per-class arrays are in the matrix's class order: user's accuracy per map class (stratum),
    producer's accuracy and area per reference class.
    """

    proportions: np.ndarray
    """p_ij: rows = map class, columns = reference class; sums to 1."""
    overall_accuracy: float
    overall_accuracy_se: float
    users_accuracy: np.ndarray
    users_accuracy_se: np.ndarray
    producers_accuracy: np.ndarray
    producers_accuracy_se: np.ndarray
    area_proportion: np.ndarray
    area_proportion_se: np.ndarray
    sample_sizes: np.ndarray
    """n_i.: the labelled sample units in each map class."""

    @property
    def overall_accuracy_ci95(self) -> float:
        return Z95 * self.overall_accuracy_se

    @property
    def users_accuracy_ci95(self) -> np.ndarray:
        return Z95 * self.users_accuracy_se

    @property
    def producers_accuracy_ci95(self) -> np.ndarray:
        return Z95 * self.producers_accuracy_se

    def areas(self, total_area: float) -> tuple[np.ndarray, np.ndarray]:
        """(area, 95 % CI half-width) of each reference class for a map of ``total_area``."""
        return total_area * self.area_proportion, Z95 * total_area * self.area_proportion_se


def check_strata(counts: np.ndarray, weights: np.ndarray, names: list[str]) -> None:
    """Raises UserError when a stratum with area has no labelled sample unit."""
    empty = [name for name, n, w in zip(names, np.asarray(counts).sum(axis=1), weights)
             if w > 0 and n == 0]
    if empty:
        raise UserError("The sample has no labelled unit in the map class(es) "
                        f"{', '.join(repr(n) for n in empty)}, which cover part of the map: "
                        "stratified estimates need at least one (better 50) in each.")


def stratified_estimates(counts: np.ndarray, weights: np.ndarray) -> StratifiedEstimates:
    """The estimators of Olofsson et al. (2014) for a stratified random sample by map class.

    Args:
        counts: (k, k) sample counts n_ij, rows = map class (stratum), columns = reference class.
        weights: (k,) the share of the map's area in each map class (W_i; normalised here).
    """
    n = np.asarray(counts, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    check_strata(n, w, [str(i) for i in range(len(w))])
    n_i = n.sum(axis=1)
    sampled = n_i > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(sampled[:, None], n / np.where(sampled, n_i, 1)[:, None], 0.0)
        # 1 / (n_i. - 1): infinite (NaN variance) for a stratum sampled once, 0 for none
        inverse = np.where(n_i > 1, 1.0 / (n_i - 1), np.where(sampled, np.nan, 0.0))
    p = w[:, None] * share
    users = np.where(sampled, np.diag(share), np.nan)
    users_var = users * (1 - users) * inverse
    stratum_var = np.where(sampled, w ** 2 * np.nan_to_num(users) * (1 - np.nan_to_num(users))
                           * inverse, 0.0)
    overall = float(np.trace(p))
    overall_se = math.sqrt(float(stratum_var.sum()))

    column = p.sum(axis=0)
    cell_var = w[:, None] ** 2 * share * (1 - share) * inverse[:, None]
    area_se = np.sqrt(cell_var.sum(axis=0))
    producers, producers_se = _producers(share, w, inverse, users, column)
    return StratifiedEstimates(p, overall, overall_se, users, np.sqrt(users_var), producers,
                               producers_se, column, area_se, n_i.astype(np.int64))


def _producers(share: np.ndarray, w: np.ndarray, inverse: np.ndarray, users: np.ndarray,
               column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Producer's accuracy and its standard error (Olofsson et al. 2014, eq. 7)."""
    k = len(w)
    producers = np.full(k, np.nan)
    se = np.full(k, np.nan)
    for j in range(k):
        if column[j] <= 0:
            continue
        producers[j] = w[j] * share[j, j] / column[j]
        own = w[j] ** 2 * (1 - producers[j]) ** 2 * users[j] * (1 - users[j]) * inverse[j] \
            if w[j] > 0 else 0.0
        others = sum(w[i] ** 2 * share[i, j] * (1 - share[i, j]) * inverse[i]
                     for i in range(k) if i != j and w[i] > 0)
        se[j] = math.sqrt((own + producers[j] ** 2 * others) / column[j] ** 2)
    return producers, se


def sample_size(weights: np.ndarray, expected_users_accuracy: np.ndarray,
                target_se: float, population: float | None = None) -> int:
    """Total sample size for a target standard error of overall accuracy (eq. 13).

    ``n = (sum W_i S_i)² / (S(O)² + sum W_i S_i² / N)`` with ``S_i = sqrt(U_i (1 - U_i))``.

    Args:
        weights: the share of the map's area in each class (normalised here).
        expected_users_accuracy: the user's accuracy expected of each class (0..1).
        target_se: the standard error of overall accuracy wanted (e.g. 0.01).
        population: the number of pixels N (None: infinite, the term vanishes).
    """
    if not 0 < target_se < 1:
        raise UserError(f"The target standard error must be between 0 and 1; got {target_se}.")
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    s = np.sqrt(np.asarray(expected_users_accuracy, dtype=np.float64)
                * (1 - np.asarray(expected_users_accuracy, dtype=np.float64)))
    finite = float((w * s ** 2).sum()) / population if population else 0.0
    return int(math.ceil(float((w * s).sum()) ** 2 / (target_se ** 2 + finite)))
