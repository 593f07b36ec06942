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
        check_step_sizes(self.num_classes, self.ratio, self.minority_size,
                         self.majority_fraction)

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


def check_step_sizes(num_classes: int, ratio, minority_size: int, majority_fraction=0.5, *,
                     dtype=None, names=None) -> None:
    """Checks that the step imbalance's number of examples n fits the run's integers (int32
    beside float32): beyond it, counts and labels wrap around to negative numbers.

    **Arguments:**

    - `num_classes`, `minority_size`: k and n_min, Python ints.
    - `ratio`, `majority_fraction`: R and rho, numbers or arrays of one shape (a design).
    - `dtype`: the floating dtype of the run (`_validate.run_dtype`); None for JAX's default.
    - `names`: {setting: the name the user typed} for the message; default the settings'.

    **Returns:** nothing. Raises `ValueError` naming `ratio` (or `minority_size`, where the
    minority classes alone overflow), the value and the largest allowed.
    """
    names = {"ratio": "ratio", "minority_size": "minority_size", **(names or {})}
    limit = int(np.iinfo(_validate.run_int_dtype(dtype)).max)
    kind = _validate.run_int_dtype(dtype).name
    ratio = np.atleast_1d(np.asarray(ratio, dtype=float))
    fraction = np.broadcast_to(np.asarray(majority_fraction, dtype=float), ratio.shape)
    num_majority = np.round(fraction * num_classes)
    if num_classes * float(minority_size) > limit:
        raise ValueError(f"`{names['minority_size']}` = {minority_size} is not allowed: "
                         f"{num_classes} classes of it hold more examples than an {kind} holds "
                         f"({limit}); expected at most {limit // num_classes}.")
    n = num_majority * np.round(ratio * minority_size) + (num_classes - num_majority) * float(
        minority_size)
    bad = np.flatnonzero(~(n <= limit))
    if bad.size:
        i = bad[0]
        largest = (limit - (num_classes - num_majority[i]) * minority_size) // num_majority[i]
        raise ValueError(f"`{names['ratio']}` = {ratio[i]:g} is not allowed: with "
                         f"{int(num_majority[i])} majority classes of round(ratio * "
                         f"{minority_size}) examples it gives n = {n[i]:.4g} examples, more "
                         f"than an {kind} holds ({limit}); expected a ratio <= "
                         f"{largest / minority_size:.6g}.")


def power_limit(counts, dtype=None) -> np.ndarray:
    """The largest |power| whose class weights n_c^-power, and their normalization over n
    examples, stay within the run's floating range: (log(1 / tiny) - log n) / log max_c n_c,
    tiny the smallest normal number; inf where every class holds one example (or a count is
    below 1, which the counts' own checks refuse).

    **Arguments:**

    - `counts`: examples per class, (..., k) (NumPy).
    - `dtype`: the floating dtype of the run; None for JAX's default.

    **Returns:** the limits, shape counts.shape[:-1].
    """
    counts = np.asarray(counts, dtype=float)
    tiny = float(np.finfo(_validate.run_dtype(dtype)).tiny)
    # Counts below 1 (settings out of range) are refused by the checks of the counts.
    valid = counts.min(-1) >= 1
    largest = np.log(np.where(valid, counts.max(-1), 1.0))
    room = -np.log(tiny) - np.log(np.where(valid, counts.sum(-1), 1.0))
    return np.where(largest > 0, room / np.where(largest > 0, largest, 1.0), np.inf)


def check_power(power, counts, *, dtype=None, name: str = "power") -> None:
    """Checks class-weight exponents against `power_limit` of their counts.

    **Arguments:**

    - `power`: gamma, a number or an array (one per member, broadcast against the counts).
    - `counts`: examples per class, (..., k), concrete.
    - `dtype`: the floating dtype of the run; None for JAX's default.
    - `name`: the setting as the user typed it.

    **Returns:** nothing. Raises `ValueError` naming `name`, the value, the counts and the
    largest |power| allowed for them.
    """
    if not _validate.is_concrete((power, counts)):
        return
    limit = power_limit(counts, dtype)
    power = np.asarray(power, dtype=float)
    shape = np.broadcast_shapes(power.shape, limit.shape)
    power, limit = np.broadcast_to(power, shape).ravel(), np.broadcast_to(limit, shape).ravel()
    counts = np.broadcast_to(np.asarray(counts), shape + np.shape(counts)[-1:]).reshape(
        -1, np.shape(counts)[-1])
    bad = np.flatnonzero(~(np.abs(power) <= limit))
    if bad.size:
        i = bad[0]
        dtype = _validate.run_dtype(dtype).name
        raise ValueError(f"`{name}` = {power[i]:g} is not allowed: with class counts from "
                         f"{int(counts[i].min())} to {int(counts[i].max())} (n = "
                         f"{int(counts[i].sum())}) the weights n_c^-power leave {dtype}'s "
                         f"range; expected |{name.rsplit('.', 1)[-1]}| <= {limit[i]:.4g}.")


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
    if _validate.is_concrete(counts):
        check_power(power, counts)
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
