"""The hard-margin SVM through the origin, the limit that importance weights fade into.

For labels y_i in {-1, +1} and z_i = y_i x_i, the max-margin direction solves

    min (1/2)|w|^2  subject to  z_i^T w >= 1 for every i,

a least-distance program. Its solution w_hat = sum_n alpha_n z_n (alpha >= 0, nonzero only on
the support vectors) is computed exactly by Lawson & Hanson's reduction of least-distance
programming to non-negative least squares, solved by their active-set algorithm
(`scipy.optimize.nnls`): a finite, well-kept method with no tolerance to tune.

The separator is homogeneous (no bias). For a bias, append a constant feature to x: gradient
flow on (w, b) is gradient flow on the augmented w, so its limit is the max-margin direction on
the augmented inputs (a bias penalized like the weights), which is what this returns.
"""

from typing import NamedTuple

import numpy as np


class MaxMargin(NamedTuple):
    """The hard-margin SVM of (X, y), with margin 1.

    **Fields:**

    - `direction`: w_hat, (p,), with min_i y_i x_i^T w_hat = 1; the margin is 1/|w_hat|.
    - `dual_coefficients`: alpha, (n,), w_hat = sum_i alpha_i y_i x_i, zero off the support.
    - `support`: (n,) booleans, the support vectors (alpha_i > 0 and margin 1).
    - `margins`: y_i x_i^T w_hat, (n,).
    """

    direction: np.ndarray
    dual_coefficients: np.ndarray
    support: np.ndarray
    margins: np.ndarray


def check_binary_data(inputs, labels, weights=None):
    """Checks inputs (n, p), labels (n,) in {-1, +1} and optional positive weights (n,) and
    returns them as float64/int NumPy arrays. Raises `ValueError` naming what is wrong."""
    X = np.asarray(inputs, dtype=float)
    y = np.asarray(labels)
    if X.ndim != 2 or 0 in X.shape:
        raise ValueError(f"`inputs` has shape {X.shape}, expected (n, p) with n, p >= 1.")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"`labels` has shape {y.shape}, expected ({X.shape[0]},): one label "
                         "per row of `inputs`.")
    bad = y[~np.isin(y, (-1, 1))]
    if bad.size:
        raise ValueError(f"`labels` = {bad[:8]} is not allowed: labels must be -1 or +1.")
    if not np.all(np.isfinite(X)):
        raise ValueError("`inputs` has non-finite entries: expected finite values.")
    if weights is None:
        return X, y.astype(int), None
    q = np.asarray(weights, dtype=float)
    if q.shape != y.shape:
        raise ValueError(f"`weights` has shape {q.shape}, expected {y.shape}: one weight per "
                         "example.")
    if not np.all(np.isfinite(q) & (q > 0)):
        raise ValueError(f"`weights` = {q[~(np.isfinite(q) & (q > 0))][:8]} is not allowed: "
                         "expected finite values > 0.")
    return X, y.astype(int), q


def max_margin(inputs, labels, *, support_tol: float = 1e-7) -> MaxMargin:
    """The hard-margin SVM direction through the origin, its dual coefficients and support.

    **Arguments:**

    - `inputs`: X, (n, p).
    - `labels`: y, (n,), in {-1, +1}.
    - `support_tol`: alpha_i > support_tol * max(alpha) (and a margin within `support_tol` of
      1) marks a support vector.

    **Returns:** a `MaxMargin`.

    Raises `ValueError` if the data are not linearly separable through the origin.
    """
    X, y, _ = check_binary_data(inputs, labels)
    if not 0.0 < support_tol < 1.0:
        raise ValueError(f"`support_tol` = {support_tol!r} is not allowed: expected a number in "
                         "(0, 1).")
    from scipy.optimize import nnls

    Z = X * y[:, None]
    n, p = Z.shape
    # Lawson & Hanson (1974), ch. 23: min |w| s.t. Z w >= 1 from the NNLS problem
    # min_{u >= 0} |E u - f| with E = [Z^T; 1^T], f = e_{p+1}. The residual r gives
    # w = -r[:p] / r[p], and alpha = u / (1 - sum u). r = 0 means the constraints are infeasible.
    E = np.vstack([Z.T, np.ones((1, n))])
    f = np.zeros(p + 1)
    f[-1] = 1.0
    u, residual_norm = nnls(E, f, maxiter=50 * (n + p + 1))
    scale = 1.0 - u.sum()
    if residual_norm < 1e-10 or scale < 1e-12:
        raise ValueError("`inputs` and `labels` are not linearly separable through the origin: "
                         "max_margin needs separable data (a homogeneous separator; append a "
                         "constant feature for a bias).")
    alpha = u / scale
    w = Z.T @ alpha
    margins = Z @ w
    if margins.min() < 1.0 - 1e-6:
        raise ValueError("`inputs` and `labels` are not linearly separable through the origin "
                         f"(the best separator leaves a margin of {margins.min():.3g} < 1).")
    support = (alpha > support_tol * alpha.max()) & (np.abs(margins - 1.0) < support_tol ** 0.5)
    return MaxMargin(direction=w, dual_coefficients=alpha, support=support, margins=margins)


def support_offsets(inputs, labels, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """The predicted offsets of the support vectors for the 1/n-normalized weighted loss.

    Gradient flow on (1/n) sum_i q_i l(y_i x_i^T w), exponential or logistic l, lambda = 0, has
    w(t) = w_hat log t + w_tilde + o(1), and on each support vector z_n^T w_tilde =
    log(q_n / (n alpha_n)) (Soudry et al. 2018, with weights and the 1/n normalization).

    **Arguments:**

    - `inputs`, `labels`: as for `max_margin`.
    - `weights`: q, (n,), positive; default all ones.

    **Returns:** `(support, offsets)`: the support-vector mask (n,) and, on it, the predicted
    z_n^T w_tilde (NaN elsewhere).
    """
    X, y, q = check_binary_data(inputs, labels, weights)
    q = np.ones(y.shape) if q is None else q
    svm = max_margin(X, y)
    offsets = np.full(y.shape, np.nan)
    s = svm.support
    offsets[s] = np.log(q[s] / (y.size * svm.dual_coefficients[s]))
    return s, offsets


def measured_offsets(w, t, inputs, labels) -> np.ndarray:
    """z_n^T (w - w_hat log t) for every example: the measured counterpart of
    `support_offsets` from the flow's weights w at time t."""
    X, y, _ = check_binary_data(inputs, labels)
    if not (np.ndim(t) == 0 and np.isfinite(t) and t > 0):
        raise ValueError(f"`t` = {t!r} is not allowed: expected a finite time > 0 (the offset "
                         "subtracts w_hat log t).")
    if np.size(w) != X.shape[1]:
        raise ValueError(f"`w` has shape {np.shape(w)}, expected {X.shape[1]} weights, one per "
                         "column of `inputs`.")
    w_hat = max_margin(X, y).direction
    return (X * y[:, None]) @ (np.asarray(w, dtype=float).reshape(-1) - w_hat * np.log(t))
