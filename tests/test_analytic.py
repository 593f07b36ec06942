"""The simulator against exact solutions: closed forms, scalar mode ODEs solved by scipy, and
the linearized growth rates of docs/theory.md."""

import jax
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import ssm_jax as sj
from ssm_jax import analytic

TIGHT = dict(rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("power, center", [(0.0, False), (1.0, False), (0.0, True)])
def test_ssm_aligned_matches_closed_form(power, center):
    spec = sj.StepImbalance(num_classes=4, ratio=9.0, minority_size=3)
    w = sj.class_weights(spec.counts, power)
    T = sj.label_matrix(spec.counts, w, center=center)
    model = sj.SSM.aligned(T, dim=6, init_strength=1e-3)
    objective = sj.TargetFit(T)
    n = spec.counts.sum()
    traj = sj.gradient_flow(model, objective, t1=200.0, num_saves=60, **TIGHT)
    U, s, V = objective.modes
    rank = int(np.sum(s > 1e-9))
    exact = analytic.mode_strength(traj.ts[:, None], s[:rank], 1e-3, n)
    a = traj.metrics["mode_strength"][:, :rank]
    np.testing.assert_allclose(a, exact, rtol=1e-6)
    assert float(exact[-1].min() / s[:rank].min()) > 0.9  # every mode was learned
    # The half-learning times read off the curve agree with the closed form.
    dense = sj.gradient_flow(model, objective, t1=200.0, num_saves=2001, **TIGHT)
    measured = sj.learning_time(dense.ts, dense.metrics["mode_strength"][:, :rank] / s[:rank])
    np.testing.assert_allclose(measured, analytic.half_learning_time(s[:rank], 1e-3, n),
                               rtol=1e-3)


def test_class_level_ssm_runs_like_example_level():
    spec = sj.StepImbalance(num_classes=4, ratio=4.0, minority_size=2)
    w = sj.class_weights(spec.counts, 0.5)
    n = int(spec.counts.sum())
    full = sj.gradient_flow(sj.SSM.aligned(sj.label_matrix(spec.counts, w), 4, 1e-2),
                            sj.TargetFit(sj.label_matrix(spec.counts, w)), 40.0, **TIGHT)
    Tk = sj.class_label_matrix(spec.counts, w)
    small = sj.gradient_flow(sj.SSM.aligned(Tk, 4, 1e-2), sj.TargetFit(Tk, num_examples=n),
                             40.0, **TIGHT)
    np.testing.assert_allclose(small.metrics["mode_strength"], full.metrics["mode_strength"],
                               rtol=1e-7)


def _mode_ode_scipy(ts, s, a0, n, N):
    rhs = lambda t, a: (N / n) * a ** (2 - 2 / N) * (s - a)  # noqa: E731
    sol = solve_ivp(rhs, (ts[0], ts[-1]), [a0], method="DOP853", t_eval=ts, rtol=1e-12,
                    atol=1e-14)
    return sol.y[0]


@pytest.mark.parametrize("depth", [3, 4])
def test_deep_linear_aligned_matches_scipy_mode_ode(depth):
    counts = np.array([6, 6, 2])
    labels = sj.labels_from_counts(counts)
    n, p = labels.size, 5
    # Whitened inputs: orthonormal columns, so the flow sees X only through Y X.
    X, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(n, p)))
    target = np.eye(3)[:, labels] @ X
    a0 = 0.05
    model = sj.DeepLinear.aligned(target, width=4, depth=depth, init_strength=a0)
    objective = sj.Objective(labels, sj.losses.square, inputs=X)
    ts = np.linspace(0.0, 60.0, 41)
    traj = sj.gradient_flow(model, objective, ts=ts, save_params=True, **TIGHT)
    U, s, V = (np.asarray(x) for x in sj.models.target_modes(target))
    products = jax.vmap(lambda m: m.end_to_end)(traj.params)
    a = np.asarray(jax.vmap(lambda P: sj.mode_strengths(P, U, V))(products))
    for i, s_i in enumerate(s):
        np.testing.assert_allclose(a[:, i], _mode_ode_scipy(ts, s_i, a0, n, depth), rtol=1e-6)
    # The package's own mode ODE agrees with scipy too.
    np.testing.assert_allclose(analytic.mode_strength_ode(ts, s, a0, n, depth), a, rtol=1e-6)


def test_depth_two_mode_ode_is_the_closed_form():
    ts = np.linspace(0.0, 50.0, 11)
    s = np.array([3.0, 1.0])
    np.testing.assert_allclose(analytic.mode_strength_ode(ts, s, 1e-2, 4.0, 2),
                               analytic.mode_strength(ts[:, None], s, 1e-2, 4.0), rtol=1e-8)


@pytest.mark.parametrize("power", [0.0, 0.5, 1.0])
def test_ufm_aligned_matches_derived_closed_form(power):
    spec = sj.StepImbalance(num_classes=4, ratio=16.0, minority_size=2)
    w = sj.class_weights(spec.counts, power)
    model = sj.UFM.aligned(spec.counts, dim=5, init_output=1e-3)
    objective = sj.Objective(spec.labels, sj.losses.square, class_weights=w)
    traj = sj.gradient_flow(model, objective, t1=400.0, num_saves=50, **TIGHT)
    exact = analytic.ufm_class_output(traj.ts, spec.counts, w, 1e-3)
    np.testing.assert_allclose(traj.metrics["class_output"], exact, rtol=1e-6)


@pytest.mark.parametrize("power", [0.0, 0.5])
def test_ufm_early_growth_rates(power):
    """From a small random start, each class's correct-class output grows like
    exp(2 lambda_c t) with lambda_c = omega_c sqrt(n_c) / n (docs/theory.md, section 3)."""
    spec = sj.StepImbalance(num_classes=4, ratio=16.0, minority_size=3)
    w = sj.class_weights(spec.counts, power)
    rates = analytic.ufm_growth_rates(spec.counts, w)
    model = sj.UFM(spec.counts, dim=16, init_scale=1e-6, key=jax.random.key(0))
    objective = sj.Objective(spec.labels, sj.losses.square, class_weights=w)
    # Late in the linear regime (outputs still ~1e-6 of their targets) the decaying part
    # has died out: measure d log z / dt there.
    # Each class is measured on its own clock, between 6 and 6.5 of its e-folding times.
    starts, ends = 6.0 / np.asarray(rates), 6.5 / np.asarray(rates)
    ts, index = np.unique(np.concatenate([[0.0], starts, ends]), return_inverse=True)
    traj = sj.gradient_flow(model, objective, ts=ts, **TIGHT)
    z = np.asarray(traj.metrics["class_output"])
    k = np.arange(rates.size)
    z_start, z_end = z[index[1:5], k], z[index[5:], k]
    assert np.all(z_end < 1e-3)
    measured = np.log(z_end / z_start) / (ends - starts) / 2
    np.testing.assert_allclose(measured, rates, rtol=0.02)


def test_effective_init_strength_predicts_random_start():
    spec = sj.StepImbalance(num_classes=6, ratio=10.0, minority_size=4)
    model = sj.UFM(spec.counts, dim=24, init_scale=1e-3, key=jax.random.key(1))
    z0 = analytic.effective_init_output(model.W, model.H, spec.counts)
    objective = sj.Objective(spec.labels, sj.losses.square)
    traj = sj.gradient_flow(model, objective, t1=2500.0, num_saves=801)
    predicted = analytic.ufm_half_learning_time(spec.counts, None, z0)
    np.testing.assert_allclose(traj.learning_times(), predicted, rtol=0.06)


def test_predicted_ratio():
    counts = sj.StepImbalance(10, 16.0, 10).counts
    a0 = 1e-4
    # Under ERM t_min/t_maj = sqrt(R) ln(sqrt(n_min)/a0 - 1) / ln(sqrt(R n_min)/a0 - 1).
    expected = 4.0 * np.log(np.sqrt(10) / a0 - 1) / np.log(np.sqrt(160) / a0 - 1)
    assert float(sj.learning_time_ratio(counts, 0.0, a0)) == pytest.approx(expected)
    assert float(sj.learning_time_ratio(counts, 1.0, a0)) == pytest.approx(1.0)
    assert float(sj.learning_time_ratio(counts, 0.5, a0, reading="loss")) == pytest.approx(1.0)
    assert float(sj.learning_time_ratio(counts, 1.0, a0, reading="loss")) < 1.0
    with pytest.raises(ValueError, match="reading"):
        sj.learning_time_ratio(counts, 1.0, a0, reading="both")
