"""max_margin (Lawson-Hanson NNLS) against scipy's SLSQP on the primal QP and scikit-learn's
SVC; bad input raises ValueError."""

import jax
import numpy as np
import pytest
from svm_oracle import primal_svm

from ssm_jax.analytic import (
    direction_angle,
    direction_error,
    max_margin,
    measured_offsets,
    support_offsets,
)
from ssm_jax.data.separable import augment_bias, gaussian_blobs


@pytest.mark.parametrize("seed,dim,n", [(0, 2, 20), (1, 5, 30), (2, 40, 10)])
def test_matches_primal_qp(seed, dim, n):
    X, y = gaussian_blobs(jax.random.key(seed), n // 2, n - n // 2, dim=dim, rotation=0.3)
    X, y = np.asarray(X), np.asarray(y)
    svm = max_margin(X, y)
    np.testing.assert_allclose(svm.direction, primal_svm(X, y), atol=1e-6)
    np.testing.assert_allclose(svm.direction, (X * y[:, None]).T @ svm.dual_coefficients,
                               atol=1e-10)
    assert svm.margins.min() == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(svm.margins[svm.support], 1.0, atol=1e-8)
    assert np.all(svm.dual_coefficients[~svm.support] < 1e-8)


def test_matches_sklearn_svc_with_bias():
    from sklearn.svm import SVC

    X, y = gaussian_blobs(jax.random.key(4), 15, 15, rotation=1.0)
    X, y = np.asarray(X), np.asarray(y)
    # max_margin on [x, 1] penalizes the bias; SVC does not: compare the bias-free problem by
    # scaling the constant feature up, which makes its penalty negligible.
    big = 1e3
    Xa = np.concatenate([X, big * np.ones((X.shape[0], 1))], axis=1)
    svm = max_margin(Xa, y)
    svc = SVC(kernel="linear", C=1e8, tol=1e-8).fit(X, y)
    w = svm.direction
    np.testing.assert_allclose(w[:2], svc.coef_[0], rtol=1e-3)
    np.testing.assert_allclose(w[2] * big, svc.intercept_[0], rtol=1e-3, atol=1e-3)
    assert set(np.flatnonzero(svm.support)) == set(svc.support_)


def test_offsets_formula_and_measurement():
    X = np.array([[1.0, 0.5], [0.6, 1.2], [-1.0, 0.3], [-2.0, -2.5]])
    y = np.array([1, 1, -1, -1])
    svm = max_margin(X, y)
    q = np.array([4.0, 4.0, 1.0, 1.0])
    support, offsets = support_offsets(X, y, q)
    np.testing.assert_allclose(offsets[support],
                               np.log(q[support] / (4 * svm.dual_coefficients[support])))
    assert np.all(np.isnan(offsets[~support]))
    # w = w_hat log t + w_tilde gives back z_n^T w_tilde.
    w_tilde = np.array([0.3, -0.2])
    t = 1e6
    np.testing.assert_allclose(measured_offsets(svm.direction * np.log(t) + w_tilde, t, X, y),
                               (X * y[:, None]) @ w_tilde, atol=1e-10)


def test_direction_error_and_angle():
    assert float(direction_error(np.array([1.0, 0.0]), np.array([2.0, 0.0]))) == 0.0
    assert float(direction_angle(np.array([1.0, 0.0]), np.array([0.0, 3.0]))) == \
        pytest.approx(np.pi / 2)
    tiny = 1e-9
    assert float(direction_angle(np.array([1.0, tiny]), np.array([1.0, 0.0]))) == \
        pytest.approx(tiny, rel=1e-6)


def test_bad_input_raises():
    X = np.array([[1.0, 0.0], [2.0, 0.0]])
    with pytest.raises(ValueError, match="not linearly separable"):
        max_margin(X, np.array([1, -1]))
    overlapping, labels = gaussian_blobs(jax.random.key(0), 50, 50, separation=0.5,
                                         separable=False)
    with pytest.raises(ValueError, match="not linearly separable"):
        max_margin(augment_bias(overlapping), labels)
    with pytest.raises(ValueError, match="`labels`"):
        max_margin(X, np.array([1, 0]))
    with pytest.raises(ValueError, match="`labels`"):
        max_margin(X, np.array([1, -1, 1]))
    with pytest.raises(ValueError, match="`inputs`"):
        max_margin(np.ones(3), np.array([1, -1, 1]))
    with pytest.raises(ValueError, match="`weights`"):
        support_offsets(X, np.array([1, -1]), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="`weights`"):
        support_offsets(X, np.array([1, -1]), np.array([1.0]))
