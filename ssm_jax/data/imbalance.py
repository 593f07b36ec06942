"""Class imbalance: class counts, class weights, label matrices and their spectra.

Counts fix array shapes where they give one row per example, so `StepImbalance` and
`labels_from_counts` take concrete integers (NumPy). Everything else may be traced: the step
imbalance's counts (`step_counts`), class weights, labels padded to a fixed number of examples
(`padded_labels`) and the label matrices, so that a sweep over the ratio, the exponent `power`
or the majority fraction builds its members under one `vmap`.
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
        counts = step_counts(self.num_classes, float(self.ratio), self.minority_size,
                             float(self.majority_fraction), xp=np)
        return counts.astype(np.int64)

    @property
    def labels(self) -> np.ndarray:
        """The label of every example, class by class: `labels_from_counts(counts)`."""
        return labels_from_counts(self.counts)


def step_counts(num_classes: int, ratio, minority_size: int, majority_fraction=0.5, *, xp=jnp):
    """The counts of `StepImbalance`, as floats, for settings that may be traced or arrays:
    round(majority_fraction k) majority classes of round(ratio n_min) examples, then minority
    classes of n_min (rounding half to even, as Python's `round`). Nothing is checked here:
    `StepImbalance` checks concrete settings, `sweeps.problems.check_settings` arrays of them.

    **Arguments:**

    - `num_classes`: k, a Python int (it fixes the shape).
    - `ratio`, `majority_fraction`: R and rho, scalars or arrays of one shape (broadcast).
    - `minority_size`: n_min.
    - `xp`: `jax.numpy` (traceable) or `numpy` (float64, on a design's arrays).

    **Returns:** the counts, shape (..., k), majority classes first.
    """
    ratio, fraction = xp.asarray(ratio)[..., None], xp.asarray(majority_fraction)[..., None]
    num_majority = xp.round(fraction * num_classes)
    majority = xp.round(ratio * minority_size)
    return xp.where(xp.arange(num_classes) < num_majority, majority,
                    xp.asarray(minority_size, dtype=majority.dtype))


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


def _check_counts(counts):
    """Concrete counts checked (returned as NumPy); traced ones (a vectorized build) pass as
    they are: a sweep checks their settings beforehand."""
    if not _validate.is_concrete(counts):
        if jnp.ndim(counts) != 1:
            raise ValueError(f"`counts` must be a 1-D array, got shape {jnp.shape(counts)}.")
        return counts
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


def padded_labels(counts, size: int, padding_label: int = -1):
    """The labels of `size` examples, class by class (`counts[c]` copies of c), then
    `padding_label` for the examples beyond sum(counts); traceable in `counts`.

    **Arguments:**

    - `counts`: examples per class (k,), integers or whole floats, concrete or traced.
    - `size`: the number of examples, a Python int, at least sum(counts).
    - `padding_label`: the label of padding (the loss's `padding_label`; -1 for a target).

    **Returns:** the labels, an integer array (size,).
    """
    ends = jnp.cumsum(jnp.asarray(counts))
    index = jnp.arange(size)
    labels = jnp.searchsorted(ends, index, side="right")
    return jnp.where(index < ends[-1], labels, padding_label).astype(int)


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


def label_matrix(counts, weights=None, *, center: bool = False, size: int | None = None):
    """The (re-weighted, optionally centered) label matrix C Y Omega^(1/2), shape (k, n).

    Column i is e_{y_i} (minus 1/k when centered) times sqrt(omega_{y_i}): the target that
    the SSM fits under *target re-weighting*. With `size`, the matrix has `size` columns, the
    ones beyond n zero (padding), and `counts` may be traced.
    """
    counts = _check_counts(counts)
    k = jnp.shape(counts)[0]
    labels = padded_labels(counts, int(np.sum(counts)) if size is None else size)
    Y = (labels == jnp.arange(k)[:, None]).astype(jnp.result_type(float))
    if center:
        Y = Y - (labels >= 0) / k
    if weights is None:
        return Y
    check_class_weights(weights, k)
    return Y * jnp.sqrt(jnp.asarray(weights))[labels]


def class_label_matrix(counts, weights=None, *, center: bool = False):
    """The class-level target with the same singular values as `label_matrix`, shape (k, k).

    Only the spectrum enters SSM dynamics, so this k x k matrix, C diag(sqrt(omega_c n_c)),
    stands in for the k x n one; use it with `num_examples = n` to keep the time scale.
    """
    counts = _check_counts(counts)
    k = jnp.shape(counts)[0]
    w = jnp.ones(k) if weights is None else jnp.asarray(check_class_weights(weights, k))
    T = jnp.diag(jnp.sqrt(w * counts))
    return T - T.sum(axis=0, keepdims=True) / k if center else T


def label_spectrum(counts, weights=None, *, center: bool = False):
    """Singular values of `label_matrix(counts, weights, center=center)`, descending, (k,).

    Computed from the k x k class-level matrix with the same spectrum, so it costs O(k^3),
    not O(n).
    """
    return jnp.linalg.svd(class_label_matrix(counts, weights, center=center), compute_uv=False)
