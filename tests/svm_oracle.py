"""An independent hard-margin SVM for the tests: the primal QP by scipy's SLSQP."""

import numpy as np
from scipy.optimize import minimize


def primal_svm(X, y):
    """min |w|^2 / 2 s.t. y_i x_i^T w >= 1 (independent of max_margin's NNLS)."""
    Z = np.asarray(X) * np.asarray(y)[:, None]
    result = minimize(lambda w: 0.5 * w @ w, np.ones(Z.shape[1]), jac=lambda w: w,
                      constraints=[{"type": "ineq", "fun": lambda w: Z @ w - 1,
                                    "jac": lambda w: Z}],
                      method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000})
    assert result.success, result.message
    return result.x
