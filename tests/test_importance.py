"""Importance weighting on separable data, against independent oracles: the max-margin SVM
from scipy's SLSQP on the primal QP, weighted L2 logistic regression from scikit-learn, the
support-vector offsets log(q_n / (n alpha_n)), and the polynomial tail's limit direction
from a direct minimization on the circle."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from svm_oracle import primal_svm
import xarray as xr

from ssm_jax import losses
from ssm_jax.analytic.separable import measured_offsets, support_offsets
from ssm_jax.cli.experiments import importance as command
from ssm_jax.data.separable import gaussian_blobs, importance_weights
from ssm_jax.dynamics.flow import gradient_flow
from ssm_jax.experiments.importance import QUICK
from ssm_jax.metrics.separable import SeparableMetrics
from ssm_jax.models.deep_linear import DeepLinear
from ssm_jax.models.linear import Linear
from ssm_jax.objective import Objective

TS = jnp.concatenate([jnp.zeros(1), jnp.logspace(-2, 12, 29)])



@pytest.fixture(scope="module")
def blobs():
    X, y = gaussian_blobs(jax.random.key(3), 6, 6, separation=3.0, rotation=0.7)
    return np.asarray(X), np.asarray(y)


def angle(u, v):
    u, v = u / np.linalg.norm(u, axis=-1, keepdims=True), v / np.linalg.norm(v)
    return np.arccos(np.clip(u @ v, -1.0, 1.0))


def test_direction_approaches_svm_monotonically_for_every_weight(blobs):
    X, y = blobs
    w_svm = primal_svm(X, y)
    metrics = SeparableMetrics(X, w_svm)
    for k in (-6, -2, 0, 2, 6):
        objective = Objective(y, losses.logistic, example_weights=importance_weights(y, 2.0**k),
                              inputs=X)
        traj = gradient_flow(Linear(2), objective, ts=TS, metrics=metrics, max_steps=5000)
        assert traj.status == "ok"
        assert traj.stats["num_steps"] < 1000
        a = np.asarray(traj.metrics["direction_angle"])[1:]
        t = np.asarray(TS)[1:]
        # Monotone once the data are separated (the first time units are a transient).
        late = t >= 1e2
        assert np.all(np.diff(a[late]) < 0), (k, a[late])
        # The angle decays like 1/log t: angle * log t settles (within 25% over 6 decades).
        ratio = (a[-1] * np.log(t[-1])) / (a[t == 1e6][0] * np.log(1e6))
        assert 0.75 < ratio < 1.25, ratio


@pytest.mark.parametrize("loss", [losses.exponential, losses.logistic])
def test_support_vector_offsets(loss):
    # Two support vectors; the others keep margins 1.23 and 2.9 (a clear gap).
    X = np.array([[1.0, 0.5], [0.6, 1.2], [-1.0, 0.3], [-2.0, -2.5]])
    y = np.array([1, 1, -1, -1])
    for q_pos in (1 / 16, 16.0):
        q = np.where(y > 0, q_pos, 1.0)
        support, predicted = support_offsets(X, y, q)
        assert support.tolist() == [False, True, True, False]
        objective = Objective(y, loss, example_weights=q, inputs=X)
        traj = gradient_flow(Linear(2), objective, ts=TS, rtol=1e-10, atol=1e-12,
                             max_steps=5000, save_params=True)
        measured = measured_offsets(traj.params.weight[-1], float(TS[-1]), X, y)
        rel = np.abs(measured[support] / predicted[support] - 1)
        assert np.all(rel < 0.02), rel


@pytest.mark.parametrize("l2", [1e-2, 1e-3])
def test_l2_limit_is_weighted_logistic_regression(blobs, l2):
    from sklearn.linear_model import LogisticRegression

    X, y = blobs
    n = y.size
    limits = []
    for k in (-4, 4):
        q = np.asarray(importance_weights(y, 2.0**k))
        objective = Objective(y, losses.logistic, example_weights=q, inputs=X, l2=l2)
        traj = gradient_flow(Linear(2), objective, ts=jnp.array([0.0, 40.0 / l2]),
                             solver=diffrax.Kvaerno5(), rtol=1e-10, atol=1e-12, max_steps=5000)
        assert traj.status == "ok"
        # sklearn: C sum_i s_i l_i + |w|^2 / 2 = (our objective) * n C with C = 1 / (n l2).
        reference = LogisticRegression(C=1.0 / (n * l2), fit_intercept=False, tol=1e-12,
                                       max_iter=10_000).fit(X, y, sample_weight=q).coef_[0]
        np.testing.assert_allclose(traj.final.weight, reference, atol=1e-5)
        limits.append(np.asarray(traj.final.weight))
    assert np.linalg.norm(limits[0] - limits[1]) > 1e-2


def polynomial_limit(X, y, q, alpha):
    """argmin over unit u of sum_i q_i (z_i^T u)^-alpha, where every margin is positive."""
    Z = X * y[:, None]

    def value(theta):
        m = Z @ np.array([np.cos(theta), np.sin(theta)])
        return np.inf if np.any(m <= 0) else np.sum(q * m ** (-alpha))

    w = primal_svm(X, y)
    t0 = np.arctan2(w[1], w[0])
    result = minimize_scalar(value, bounds=(t0 - 1.0, t0 + 1.0), method="bounded",
                             options={"xatol": 1e-12})
    return np.array([np.cos(result.x), np.sin(result.x)])


def test_polynomial_limit_depends_on_weights_logistic_does_not(blobs):
    X, y = blobs
    tail = losses.PolynomialTail(1.0)
    final = {}
    for name, loss in (("polynomial", tail), ("logistic", losses.logistic)):
        for k in (-4, 4):
            q = np.asarray(importance_weights(y, 2.0**k))
            objective = Objective(y, loss, example_weights=q, inputs=X)
            traj = gradient_flow(Linear(2), objective, ts=TS, rtol=1e-8, atol=1e-10,
                                 max_steps=5000, save_params=True)
            w = np.asarray(traj.params.weight)[1:]  # w(0) = 0 has no direction
            final[name, k] = w / np.linalg.norm(w, axis=-1, keepdims=True)
            if name == "polynomial":
                oracle = polynomial_limit(X, y, q, 1.0)
                assert angle(final[name, k][-1], oracle) < 1e-3
    gap = {name: np.arccos(np.clip(np.sum(final[name, -4] * final[name, 4], axis=-1), -1, 1))
           for name in ("polynomial", "logistic")}
    i6, i8 = (int(np.argmin(np.abs(TS[1:] - t))) for t in (1e6, 1e8))
    # Polynomial tail: the weights keep the directions apart, at a fixed angle.
    assert gap["polynomial"][-1] > 0.1
    np.testing.assert_allclose(gap["polynomial"][-1], gap["polynomial"][i8], rtol=0.01)
    # Logistic: the gap between the weights' directions fades like 1 / log t.
    assert np.all(np.diff(gap["logistic"][i6:]) < 0)
    ratio = gap["logistic"][-1] * np.log(1e12) / (gap["logistic"][i6] * np.log(1e6))
    assert 0.75 < ratio < 1.25, ratio


@pytest.mark.parametrize("depth", [2, 3])
def test_deep_linear_end_to_end_approaches_svm(blobs, depth):
    X, y = blobs
    w_svm = primal_svm(X, y)
    metrics = SeparableMetrics(X, w_svm)
    model = DeepLinear(1, 4, depth, in_features=2, init_scale=0.3, key=jax.random.key(0))
    for k in (-4, 4):
        objective = Objective(y, losses.logistic, example_weights=importance_weights(y, 2.0**k),
                              inputs=X)
        traj = gradient_flow(model, objective, ts=TS, metrics=metrics, max_steps=5000)
        assert traj.status == "ok"
        a = np.asarray(traj.metrics["direction_angle"])
        t = np.asarray(TS)
        assert np.all(np.diff(a[t >= 1e2]) < 0), a[t >= 1e2]
        # Slower than the linear model's 1/log t at these times, but steadily to zero.
        assert a[-1] < 0.8 * a[t == 1e4][0], a[t >= 1e4]


def test_bad_weights_and_labels_raise(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="positive_weight"):
        importance_weights(y, 0.0)
    with pytest.raises(ValueError, match="positive_weight"):
        importance_weights(y, -2.0)
    with pytest.raises(ValueError, match="weights"):
        support_offsets(X, y, np.where(y > 0, -1.0, 1.0))
    with pytest.raises(ValueError, match="labels"):
        Objective(np.where(y > 0, 1, 0), losses.logistic, inputs=X)
    with pytest.raises(ValueError, match="example_weights"):
        Objective(y, losses.logistic, example_weights=np.ones(y.size + 1), inputs=X)


def test_quick_experiment_command(tmp_path, monkeypatch):
    import dataclasses

    import typer
    from typer.testing import CliRunner

    from ssm_jax.experiments import importance

    assert len(QUICK.log2_weights) >= 9 and set(QUICK.l2s) >= {0.0, 1e-2}
    # The notebook test runs QUICK itself; here a smaller setting keeps the CLI check fast.
    small = dataclasses.replace(QUICK, models=("linear",), log2_weights=(-8, 0, 8),
                                saves_per_decade=1, grid_resolution=21)
    monkeypatch.setattr(importance, "QUICK", small)

    app = typer.Typer()
    app.command("importance")(command)
    app.command("other")(lambda: None)  # two commands, so the name is part of the call
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["importance", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Fraction of the probe set predicted positive" in result.output
    for name in ("F4_importance_boundaries.png", "F5_direction_error.png",
                 "importance_fractions.csv", "importance.nc"):
        size = (out / name).stat().st_size
        assert 0 < size < 300_000 or name.endswith(".nc"), (name, size)
    ds = xr.open_dataset(out / "importance.nc")
    linear = ds.sel(model="linear")
    assert np.all(linear.status.values == 0)
    # lambda > 0 runs came to rest early; lambda = 0 runs went on to t = 1e12.
    assert np.all(linear.stop_time.sel(l2=1e-2).values < 1e7)
    assert np.all(linear.stop_time.sel(l2=0.0).values == 1e12)
    angle = linear.direction_angle.sel(loss="logistic", l2=0.0, seed=0)
    late = angle.time.values >= 1e2
    assert np.all(np.diff(angle.values[:, late], axis=1) < 0)

