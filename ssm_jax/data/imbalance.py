"""Class imbalance: class counts, class weights, label matrices and their spectra.

Counts fix array shapes, so they are concrete integers (NumPy). Weights and the exponent
`power` may be traced arrays, so that a sweep over them compiles once.
"""

import dataclasses

import jax.numpy as jnp
import numpy as np

from .. import _validate


@dataclasses.dataclass(frozen=True)
class StepImbalance:
    """Step imbalance: `round(majority_fraction * num_classes)` majority classes of
    `round(ratio * minority_size)` examples each, the others minority classes of
    `minority_size` examples.

    **Arguments:**

    - `num_classes`: k >= 2.
    - `ratio`: imbalance ratio R >= 1.
    - `minority_size`: examples per minority class, n_min >= 1.
    - `majority_fraction`: rho in (0, 1); at least one class of each kind must result.
    """

    num_classes: int
    ratio: float
    minority_size: int
    majority_fraction: float = 0.5

    def __post_init__(self):
        _validate.integer("num_classes", self.num_classes, minimum=2)
        _validate.number("ratio", self.ratio, low=1.0)
        _validate.integer("minority_size", self.minority_size, minimum=1)
        _validate.number("majority_fraction", self.majority_fraction,
                         low=0.0, high=1.0, low_open=True, high_open=True)
        if not 1 <= self.num_majority <= self.num_classes - 1:
            raise ValueError(
                f"`majority_fraction` = {self.majority_fraction} gives {self.num_majority} "
                f"majority classes out of {self.num_classes}: expected between 1 and "
                f"{self.num_classes - 1}."
            )

    @property
    def num_majority(self) -> int:
        """The number of majority classes, round(majority_fraction k)."""
        return round(self.majority_fraction * self.num_classes)

    @property
    def counts(self) -> np.ndarray:
        """Examples per class, majority classes first."""
        majority_size = round(self.ratio * self.minority_size)
        sizes = [majority_size] * self.num_majority
        sizes += [self.minority_size] * (self.num_classes - self.num_majority)
        return np.array(sizes, dtype=np.int64)

    @property
    def labels(self) -> np.ndarray:
        """The label of every example, class by class: `labels_from_counts(counts)`."""
        return labels_from_counts(self.counts)


@dataclasses.dataclass(frozen=True)
class LongTailImbalance:
    """Long-tailed (exponential) imbalance: n_c = round(max_size * ratio^(-(c-1)/(k-1))).

    **Arguments:**

    - `num_classes`: k >= 2.
    - `ratio`: R = n_max / n_min >= 1.
    - `max_size`: examples in the largest class; the smallest must keep at least one.
    """

    num_classes: int
    ratio: float
    max_size: int

    def __post_init__(self):
        _validate.integer("num_classes", self.num_classes, minimum=2)
        _validate.number("ratio", self.ratio, low=1.0)
        _validate.integer("max_size", self.max_size, minimum=1)
        if round(self.max_size / self.ratio) < 1:
            raise ValueError(
                f"`max_size` = {self.max_size} with `ratio` = {self.ratio} leaves the smallest "
                f"class empty: expected max_size >= ratio / 2."
            )

    @property
    def counts(self) -> np.ndarray:
        """Examples per class, largest first."""
        c = np.arange(self.num_classes)
        sizes = self.max_size * float(self.ratio) ** (-c / (self.num_classes - 1))
        return np.round(sizes).astype(np.int64)

    @property
    def labels(self) -> np.ndarray:
        """The label of every example, class by class: `labels_from_counts(counts)`."""
        return labels_from_counts(self.counts)


def _check_counts(counts) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size < 2 or not np.issubdtype(counts.dtype, np.integer):
        raise ValueError(f"`counts` must be a 1-D integer array of at least 2 classes, "
                         f"got {counts!r}.")
    if np.any(counts < 1):
        raise ValueError(f"`counts` = {counts} is not allowed: every class needs >= 1 example.")
    return counts


def labels_from_counts(counts) -> np.ndarray:
    """Labels 0..k-1, class by class: `counts[c]` copies of c."""
    counts = _check_counts(counts)
    return np.repeat(np.arange(counts.size), counts)


def class_weights(counts, power=1.0, *, normalize: bool = True):
    """Class weights omega_c proportional to n_c^(-power).

    **Arguments:**

    - `counts`: examples per class (k,).
    - `power`: gamma; 0 is ERM, 1 is inverse-frequency re-weighting. May be a traced
      array, so that sweeps over gamma compile once.
    - `normalize`: scale so that sum_i omega_{y_i} = n (mean per-example weight 1), which keeps
      time scales comparable across gamma.

    **Returns:** the weights, shape (k,).
    """
    counts = _check_counts(counts)
    _validate.number("power", power)
    n_c = jnp.asarray(counts, dtype=jnp.result_type(float))
    weights = n_c ** (-jnp.asarray(power, dtype=n_c.dtype))
    if normalize:
        weights = weights * n_c.sum() / jnp.sum(n_c * weights)
    return weights


def check_class_weights(weights, num_classes: int):
    """Validates user-given class weights: length k, finite, non-negative, not all zero."""
    _validate.shape("class_weights", weights, (num_classes,), "one weight per class")
    _validate.number("class_weights", weights, low=0.0)
    if _validate.is_concrete(weights) and not np.any(np.asarray(weights) > 0):
        raise ValueError("`class_weights` are all zero: at least one must be positive.")
    return weights


def label_matrix(counts, weights=None, *, center: bool = False):
    """The (re-weighted, optionally centered) label matrix C Y Omega^(1/2), shape (k, n).

    Column i is e_{y_i} (minus 1/k when centered) times sqrt(omega_{y_i}): the target that
    the SSM fits under *target re-weighting*.
    """
    counts = _check_counts(counts)
    k = counts.size
    Y = jnp.eye(k)[:, labels_from_counts(counts)]
    if center:
        Y = Y - 1.0 / k
    if weights is None:
        return Y
    check_class_weights(weights, k)
    return Y * jnp.sqrt(jnp.asarray(weights))[labels_from_counts(counts)]


def class_label_matrix(counts, weights=None, *, center: bool = False):
    """The class-level target with the same singular values as `label_matrix`, shape (k, k).

    Only the spectrum enters SSM dynamics, so this k x k matrix, C diag(sqrt(omega_c n_c)),
    stands in for the k x n one; use it with `num_examples = n` to keep the time scale.
    """
    counts = _check_counts(counts)
    k = counts.size
    w = jnp.ones(k) if weights is None else jnp.asarray(check_class_weights(weights, k))
    T = jnp.diag(jnp.sqrt(w * counts))
    return T - T.sum(axis=0, keepdims=True) / k if center else T


def label_spectrum(counts, weights=None, *, center: bool = False):
    """Singular values of `label_matrix(counts, weights, center=center)`, descending, (k,).

    Computed from the k x k class-level matrix with the same spectrum, so it costs O(k^3),
    not O(n).
    """
    return jnp.linalg.svd(class_label_matrix(counts, weights, center=center), compute_uv=False)
