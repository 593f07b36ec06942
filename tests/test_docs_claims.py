"""Two statements of the docs, each checked on an instance built for the test.

- docs/importance.md, "Measured accuracy": the support-vector offsets of the flow on separable
  data converge like t^-c with c = min(mu, m - 1), mu the smallest nonzero eigenvalue of
  A = sum_S alpha_n z_n z_n^T and m the smallest margin off the support (the gap). Instances
  are built around a known max-margin solution (by its KKT conditions), so that the SVM, its
  dual coefficients, mu and the gap are known in closed form.
- docs/theory.md, Section 3: the UFM's linearization around 0 is exact for g_c = w_c +
  S_c/sqrt(n_c), which grows like exp(lambda_c t), and d_c = w_c - S_c/sqrt(n_c), which decays
  like exp(-lambda_c t); the class's mean correct-class output is (|g_c|^2 - |d_c|^2) /
  (4 sqrt(n_c)), a pure exp(2 lambda_c t) only once d_c has died out.
"""

import jax
import numpy as np
import pytest
from svm_oracle import primal_svm

import ssm_jax as sj

OFFSET_TIMES = np.concatenate([[0.0], np.logspace(0, 12, 25)])


def separable_instance(seed, alphas, spread, far_margins, p=5):
    """Points z_n = y_n x_n with a known max-margin solution: support vectors (1/c, v_n) with
    sum_n alpha_n v_n = 0 and c^2 = sum_n alpha_n, so that w_hat = c e_1 = sum_n alpha_n z_n
    and every z_n . w_hat = 1 (the KKT conditions); the other points at `far_margins`."""
    rng = np.random.default_rng(seed)
    alphas = np.asarray(alphas, dtype=float)
    c = np.sqrt(alphas.sum())
    V = spread * rng.normal(size=(alphas.size, p - 1))
    V = V - alphas @ V / alphas.sum()
    far = np.asarray(far_margins, dtype=float)
    Z = np.vstack([np.hstack([np.full((alphas.size, 1), 1 / c), V]),
                   np.hstack([far[:, None] / c, rng.normal(size=(far.size, p - 1))])])
    y = np.where(np.arange(len(Z)) % 2 == 0, 1, -1)
    w_hat = np.zeros(p)
    w_hat[0] = c
    return Z * y[:, None], y, w_hat, alphas


# eigenvalue-limited: mu = 0.099 far below the gap 1.4; gap-limited: gap 0.25, mu = 1.
INSTANCES = {
    "eigenvalue": dict(seed=2, alphas=(0.3, 0.2, 0.1), spread=0.6,
                       far_margins=2.4 + 0.5 * np.arange(4)),
    "gap": dict(seed=2, alphas=(1.0, 1.5, 2.0), spread=1.0,
                far_margins=1.25 + 0.5 * np.arange(4)),
}


@pytest.mark.parametrize("loss", ["exponential", "logistic"])
@pytest.mark.parametrize("name", list(INSTANCES))
def test_offsets_converge_at_the_smaller_of_eigenvalue_and_gap(name, loss):
    X, y, w_hat, alphas = separable_instance(**INSTANCES[name])
    m = alphas.size
    svm = sj.max_margin(X, y)
    np.testing.assert_allclose(svm.direction, w_hat, atol=1e-10)
    np.testing.assert_allclose(primal_svm(X, y), w_hat, atol=1e-6)
    np.testing.assert_allclose(svm.dual_coefficients[:m], alphas, rtol=1e-8)
    assert svm.support.tolist() == [True] * m + [False] * (len(y) - m)

    Z = X * y[:, None]
    A = (Z[:m].T * alphas) @ Z[:m]
    # w_hat is always an eigenvector of A with eigenvalue 1 (A w_hat = sum alpha z = w_hat):
    # c never exceeds 1.
    np.testing.assert_allclose(A @ w_hat, w_hat, atol=1e-12)
    eigenvalues = np.linalg.eigvalsh(A)
    mu = eigenvalues[eigenvalues > 1e-9].min()
    gap = (Z[m:] @ w_hat).min() - 1
    c = min(mu, gap)
    assert max(mu, gap) > 3 * c  # the instance tells the two apart

    objective = sj.Objective(y, getattr(sj.losses, loss), inputs=X)
    traj = sj.gradient_flow(sj.Linear(X.shape[1]), objective, ts=OFFSET_TIMES, rtol=1e-11,
                            atol=1e-13, max_steps=20_000, save_params=True)
    assert traj.status == "ok"
    support, predicted = sj.analytic.support_offsets(X, y)
    errors = np.array([np.max(np.abs(sj.analytic.measured_offsets(w, t, X, y)[support]
                                     - predicted[support]))
                       for w, t in zip(np.asarray(traj.params.weight)[1:], OFFSET_TIMES[1:],
                                       strict=True)])
    late = OFFSET_TIMES[1:] >= 1e8
    exponent = -np.polyfit(np.log(OFFSET_TIMES[1:][late]), np.log(errors[late]), 1)[0]
    assert abs(exponent / c - 1) < 0.05, (exponent, mu, gap)
    if name == "eigenvalue":
        # A clear gap of 1.4, and still 4% off at t = 1e12.
        assert errors[-1] > 1e-2


def test_ufm_early_growth_is_exact_for_the_sum_and_difference():
    counts, weights, d = np.array([9, 4, 1]), np.array([0.5, 1.0, 3.0]), 5
    n = counts.sum()
    labels = np.asarray(sj.labels_from_counts(counts))
    rates = weights * np.sqrt(counts) / n  # lambda_c, by hand
    np.testing.assert_allclose(sj.analytic.ufm_growth_rates(counts, weights), rates, rtol=1e-14)
    # From a tiny start, until the fastest class's output has grown a thousandfold: the
    # neglected terms are cubic in the parameters, ~1e-6 relative here.
    ts = np.linspace(0.0, np.log(1e3) / rates.max(), 41)
    model = sj.UFM(counts, d, init_scale=1e-6, key=jax.random.key(12))
    traj = sj.gradient_flow(model, sj.Objective(labels, sj.losses.square, class_weights=weights),
                            ts=ts, rtol=1e-12, atol=1e-16, save_params=True)
    W, H = np.asarray(traj.params.W), np.asarray(traj.params.H)
    for c in range(counts.size):
        S = H[:, :, labels == c].sum(-1) / np.sqrt(counts[c])  # S_c / sqrt(n_c), (T, d)
        g, dd = W[:, c] + S, W[:, c] - S
        grow, decay = np.exp(rates[c] * ts)[:, None], np.exp(-rates[c] * ts)[:, None]
        size = np.linalg.norm(g, axis=1)
        assert np.max(np.linalg.norm(g - g[0] * grow, axis=1) / size) < 1e-5
        assert np.max(np.linalg.norm(dd - dd[0] * decay, axis=1) / size) < 1e-5
        z = np.einsum("td,td->t", W[:, c], S) / np.sqrt(counts[c])  # w_c . S_c / n_c
        g0, d0 = np.sum(g[0] ** 2), np.sum(dd[0] ** 2)
        closed = (g0 * grow[:, 0] ** 2 - d0 * decay[:, 0] ** 2) / (4 * np.sqrt(counts[c]))
        assert np.max(np.abs(z - closed)) < 1e-5 * np.max(np.abs(z))
        # Not a pure exponential from the start: z_c(0) exp(2 lambda_c t) is far off ...
        assert abs(z[0] * grow[-1, 0] ** 2 - z[-1]) > 0.5 * abs(z[-1])
        # ... and the growing part alone is 0.5% off or more at t = 1/lambda_c, exact once
        # d_c has died out.
        growing = g0 * grow[:, 0] ** 2 / (4 * np.sqrt(counts[c]))
        i = np.argmin(np.abs(rates[c] * ts - 1.0))
        assert abs(growing[i] / z[i] - 1) > 5e-3
        assert abs(growing[-1] / z[-1] - 1) < 1e-4
