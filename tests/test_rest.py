"""The two-layer ReLU network with L2 comes to rest on kinks (docs/importance.md, "Why the MLP
with lambda > 0 does not come to rest"): at its rest point hidden units' hyperplanes pass
through data points, so |grad L| stays of order lambda on every side of it and `SteadyState`'s
test |grad L| <= tol * lambda cannot fire.

Oracles, written in numpy and scipy on the same L2 objective: the rest point from SLSQP with
the kinks as equality constraints; its Clarke stationarity (0 in the convex hull of the
one-sided gradients, by bounded least squares); and the measure a nonsmooth rest test would
use, the least norm in the convex hull of gradients sampled along a short explicit-Euler probe.
"""

import itertools

import diffrax
import jax
import numpy as np
import pytest
from scipy.optimize import lsq_linear, minimize, nnls

import ssm_jax as sj
from ssm_jax.data.separable import augment_bias

LAM = 1e-2  # lambda, the L2 strength
WIDTH = 4
P = 3  # (x1, x2, 1)
TS = np.array([0.0, 10.0, 1e6])


def split(theta):
    return theta[: WIDTH * P].reshape(WIDTH, P), theta[WIDTH * P:]


def objective(theta, Z, y):
    """(1/n) sum_i log(1 + exp(-y_i f(z_i))) + (lambda/2) |theta|^2, f(z) = a^T relu(W z)."""
    W, a = split(theta)
    f = np.maximum(Z @ W.T, 0.0) @ a
    return np.mean(np.logaddexp(0.0, -y * f)) + 0.5 * LAM * theta @ theta


def gradient(theta, Z, y, gates=None):
    """The gradient, with relu'(w_j . z_i) replaced by `gates[(i, j)]` where given: a gate in
    [0, 1] at a kink spans the one-sided gradients' convex hull (Clarke's subdifferential)."""
    W, a = split(theta)
    pre = Z @ W.T
    slope = (pre > 0).astype(float)
    for (i, j), s in (gates or {}).items():
        slope[i, j] = s
    f = np.maximum(pre, 0.0) @ a
    c = -y / (1.0 + np.exp(y * f)) / y.size  # dL/df_i
    gW = (c[:, None] * slope * a[None, :]).T @ Z
    ga = np.maximum(pre, 0.0).T @ c
    return np.concatenate([gW.ravel(), ga]) + LAM * theta


def relative_preactivations(theta, Z):
    W, _ = split(theta)
    scale = np.linalg.norm(Z, axis=1)[:, None] * np.linalg.norm(W, axis=1)[None, :]
    return np.abs(Z @ W.T) / np.maximum(scale, 1e-300)


def alive(theta):
    return np.linalg.norm(split(theta)[0], axis=1) > 1e-3


def clarke_measure(theta, Z, y, kinks):
    """The least |g| over Clarke's subdifferential at `theta`, its kinks relaxed (scipy's
    bounded least squares over the gates), and the gates that attain it."""
    closed = {kink: 0.0 for kink in kinks}
    base = gradient(theta, Z, y, closed)
    A = np.array([gradient(theta, Z, y, {**closed, kink: 1.0}) - base for kink in kinks]).T
    gates = lsq_linear(A, -base, bounds=(0.0, 1.0), tol=1e-14).x
    return np.linalg.norm(A @ gates + base), gates


def hull_min_norm(G):
    """min |G^T mu| over the simplex, as a non-negative least-squares problem with the
    constraint sum(mu) = 1 as a heavily weighted row."""
    weight = 1e4 * np.abs(G).max()
    A = np.vstack([G.T, weight * np.ones((1, G.shape[0]))])
    b = np.concatenate([np.zeros(G.shape[1]), [weight]])
    mu, _ = nnls(A, b)
    return np.linalg.norm(G.T @ mu)


def probe_measure(theta, Z, y, radius=1e-3, samples=8):
    """The least norm in the convex hull of gradients sampled along `samples` explicit-Euler
    steps, each of length `radius` |theta|: a sampled Goldstein epsilon-subgradient."""
    g = gradient(theta, Z, y)
    h = radius * np.linalg.norm(theta) / np.linalg.norm(g)
    G = [g]
    for _ in range(samples - 1):
        theta = theta - h * G[-1]
        G.append(gradient(theta, Z, y))
    return hull_min_norm(np.array(G))


@pytest.fixture(scope="module")
def run():
    """The importance experiment's MLP settings (Tsit5, rtol 1e-4, SteadyState(1e-2)) on 12
    blobs, logistic loss, lambda = 1e-2; 2,000 steps."""
    X, y = sj.gaussian_blobs(jax.random.key(5), 6, 6, separation=3.0, rotation=0.5, gap=0.5)
    Z, y = np.asarray(augment_bias(X)), np.asarray(y)
    model = sj.TwoLayerReLU(P, WIDTH, init_scale=0.3, key=jax.random.key(105),
                            hidden_bias=False)
    traj = sj.gradient_flow(model, sj.Objective(y, sj.losses.logistic, inputs=Z, l2=LAM),
                            ts=TS, solver=diffrax.Tsit5(),
                            stepsize_controller=diffrax.PIDController(rtol=1e-4, atol=1e-7),
                            max_steps=2000, event=sj.SteadyState(1e-2), save_params=True)
    thetas = [np.concatenate([np.ravel(W), np.ravel(a)])
              for W, a in zip(np.asarray(traj.params.hidden), np.asarray(traj.params.output),
                              strict=True)]
    final = np.concatenate([np.ravel(traj.final.hidden), np.ravel(traj.final.output)])
    return traj, Z, y, thetas, final


@pytest.fixture(scope="module")
def reference(run):
    """The rest point by SLSQP from the flow's end, with the kinks it sits on (alive units
    whose hyperplane passes within 1% of a data point) held as equality constraints."""
    _, Z, y, _, final = run
    near = (relative_preactivations(final, Z) < 1e-2) & alive(final)[None, :]
    kinks = list(zip(*np.nonzero(near), strict=True))

    def on_kink(i, j):
        def fun(theta):
            return Z[i] @ split(theta)[0][j]

        def jac(theta):
            row = np.zeros_like(theta)
            row[j * P:(j + 1) * P] = Z[i]
            return row

        return {"type": "eq", "fun": fun, "jac": jac}

    result = minimize(objective, final, args=(Z, y), jac=lambda th, Z, y: gradient(th, Z, y),
                      method="SLSQP", constraints=[on_kink(i, j) for i, j in kinks],
                      options={"ftol": 1e-15, "maxiter": 1000})
    assert result.success, result.message
    return result.x, kinks


def test_steady_state_never_fires(run):
    traj, Z, y, _, final = run
    assert traj.status == "max_steps"
    assert float(traj.stats["stop_time"]) < 1e4
    # The one-sided gradient stays of order lambda: a hundredfold above the rest test.
    assert np.linalg.norm(gradient(final, Z, y)) > 0.3 * LAM


def test_rest_point_lies_on_kinks(run, reference):
    _, Z, y, _, final = run
    rest, kinks = reference
    assert len(kinks) >= 2
    # Clarke stationary: gates strictly inside (0, 1) cancel the gradient.
    measure, gates = clarke_measure(rest, Z, y, kinks)
    assert measure < 1e-5 * LAM
    assert np.all((gates > 0.05) & (gates < 0.95)), gates
    # Every differentiable point near it has |grad L| >= 0.3 lambda: the gradient there is one
    # of the one-sided gradients, and none of them is small.
    one_sided = [np.linalg.norm(gradient(rest, Z, y, dict(zip(kinks, pattern, strict=True))))
                 for pattern in itertools.product((0.0, 1.0), repeat=len(kinks))]
    assert min(one_sided) > 0.3 * LAM
    # No other data point sits near a kink of a unit that is alive.
    clear = relative_preactivations(rest, Z)
    for i, j in kinks:
        clear[i, j] = np.inf
    assert clear[:, alive(rest)].min() > 0.1
    # The flow has come to rest there, within its tolerance (rtol 1e-4).
    gap = objective(final, Z, y) - objective(rest, Z, y)
    assert -1e-9 < gap < 1e-4, gap
    W, a = split(final)
    W_rest, a_rest = split(rest)
    outputs, rest_outputs = np.maximum(Z @ W.T, 0) @ a, np.maximum(Z @ W_rest.T, 0) @ a_rest
    assert np.max(np.abs(outputs - rest_outputs)) < 3e-3 * np.max(np.abs(rest_outputs))


def test_sampled_subgradient_sees_the_rest(run, reference):
    # Sampled without knowing where the kinks are, the measure finds the rest point, agrees
    # with Clarke's at the flow's end (which hovers about 5e-3 |theta| from it, at rtol 1e-4)
    # and stays large on the way there.
    _, Z, y, thetas, final = run
    rest, kinks = reference
    assert probe_measure(rest, Z, y) < 1e-2 * LAM
    measure, _ = clarke_measure(final, Z, y, kinks)
    assert abs(probe_measure(final, Z, y) / measure - 1) < 0.2
    assert probe_measure(thetas[1], Z, y) > LAM  # t = 10


def test_sampled_steady_state_comes_to_rest_at_the_reference(run, reference):
    """With the sampled rest test the same flow ends "ok" at the kinked rest point; without
    L2 it never fires."""
    traj, Z, y, _, _ = run
    rest, _ = reference
    model = sj.TwoLayerReLU(P, WIDTH, init_scale=0.3, key=jax.random.key(105),
                            hidden_bias=False)
    flow = dict(ts=TS, solver=diffrax.Tsit5(), max_steps=4000,
                stepsize_controller=diffrax.PIDController(rtol=1e-4, atol=1e-7),
                event=sj.SampledSteadyState(1e-2))
    rested = sj.gradient_flow(model, sj.Objective(y, sj.losses.logistic, inputs=Z, l2=LAM),
                              **flow)
    assert rested.status == "ok" and float(rested.stats["stop_time"]) < TS[-1]
    final = np.concatenate([np.ravel(rested.final.hidden), np.ravel(rested.final.output)])
    assert abs(objective(final, Z, y) - objective(rest, Z, y)) < 2.5e-5
    free = sj.gradient_flow(model, sj.Objective(y, sj.losses.logistic, inputs=Z), **flow)
    assert float(free.stats["stop_time"]) == TS[-1]
