import diffrax
import equinox as eqx
import jax
import numpy as np
import optax
import pytest
from scipy.integrate import solve_ivp
from scipy.special import softmax

import ssm_jax as sj
from ssm_jax.dynamics import base, flow

COUNTS = np.array([4, 2, 1])
LABELS = sj.labels_from_counts(COUNTS)
K, D, N = 3, 2, 7


def _numpy_gradient(theta, loss, omega, l2):
    """The UFM's gradient written out by hand: W (k x d), H (d x n), b (k,)."""
    W = theta[: K * D].reshape(K, D)
    H = theta[K * D: K * D + D * N].reshape(D, N)
    b = theta[K * D + D * N:]
    Z = W @ H + b[:, None]
    Y = np.eye(K)[:, LABELS]
    residual = Z - Y if loss == "square" else softmax(Z, axis=0) - Y  # dl/dz, per column
    G = residual * omega[LABELS] / N
    dW, dH, db = G @ H.T + l2 * W, W.T @ G + l2 * H, G.sum(1) + l2 * b
    return np.concatenate([dW.ravel(), dH.ravel(), db])


@pytest.mark.parametrize("loss", ["square", "cross_entropy"])
def test_ufm_flow_matches_scipy(loss):
    omega = np.asarray(sj.class_weights(COUNTS, 1.0))
    l2 = 1e-2
    model = sj.UFM(COUNTS, D, init_scale=0.5, key=jax.random.key(2), bias=True)
    objective = sj.Objective(LABELS, getattr(sj.losses, loss), class_weights=omega, l2=l2)
    ts = np.linspace(0.0, 30.0, 7)
    traj = sj.gradient_flow(model, objective, ts=ts, save_params=True, rtol=1e-12, atol=1e-14)
    theta0 = np.concatenate([np.ravel(model.W), np.ravel(model.H), np.ravel(model.b)])
    ref = solve_ivp(lambda t, th: -_numpy_gradient(th, loss, omega, l2), (0.0, 30.0), theta0,
                    method="DOP853", t_eval=ts, rtol=1e-13, atol=1e-15)
    p = traj.params
    ours = np.concatenate([p.W.reshape(7, -1), p.H.reshape(7, -1), p.b], axis=1)
    np.testing.assert_allclose(ours, ref.y.T, rtol=1e-6, atol=1e-9)
    assert np.max(np.abs(ref.y[:, -1] - theta0)) > 0.1  # the parameters did move


def test_gd_equals_euler():
    model = sj.UFM(COUNTS, D, init_scale=0.5, key=jax.random.key(0))
    objective = sj.Objective(LABELS, sj.losses.cross_entropy,
                             class_weights=sj.class_weights(COUNTS, 0.5))
    eta = 0.1
    gd = sj.train(model, objective, optax.sgd(eta), steps=300, record_every=30)
    euler = sj.gradient_flow(model, objective, t1=300 * eta, num_saves=11,
                             solver=diffrax.Euler(), dt0=eta)
    np.testing.assert_allclose(euler.ts, gd.ts * eta)
    for name in ("loss", "class_output", "class_progress"):
        np.testing.assert_allclose(euler.metrics[name], gd.metrics[name], rtol=1e-10)
    np.testing.assert_allclose(euler.final.H, gd.final.H, rtol=1e-10)


def test_one_compilation_serves_weights_ratios_and_seeds():
    # Both step imbalances have n = 16: the labels change, the shapes do not.
    specs = [sj.StepImbalance(4, 3.0, 2), sj.StepImbalance(4, 1.0, 4)]
    assert specs[0].counts.sum() == specs[1].counts.sum()
    before = eqx.debug.get_num_traces(base.compiled_run)
    for spec in specs:
        for power in (0.0, 0.5, 1.0):
            for seed in (0, 1):
                model = sj.UFM(spec.counts, 9, init_scale=1e-2, key=jax.random.key(seed))
                objective = sj.Objective(spec.labels, sj.losses.square,
                                         class_weights=sj.class_weights(spec.counts, power))
                traj = sj.gradient_flow(model, objective, t1=float(10 + seed), num_saves=5)
                assert traj.status == "ok"
    assert eqx.debug.get_num_traces(base.compiled_run) - before == 1


def test_vector_field_evals_counted_exactly():
    """The closed-form count against the vector field's executions, counted by a host callback."""
    model = sj.UFM(COUNTS, D, init_scale=0.5, key=jax.random.key(0))
    objective = sj.Objective(LABELS, sj.losses.square)
    calls = []
    field = flow.vector_field(model, objective)

    def counted(t, y, args):
        jax.debug.callback(lambda: calls.append(1))
        return field(t, y, args)

    params = eqx.filter(model, eqx.is_inexact_array)
    cases = [(diffrax.Tsit5(), None), (diffrax.Dopri8(), 0.1), (diffrax.Heun(), None),
             (diffrax.Euler(), 0.5)]
    for solver, dt0 in cases:
        calls.clear()
        controller = (diffrax.PIDController(rtol=1e-4, atol=1e-6) if dt0 is None
                      else diffrax.ConstantStepSize())
        sol = diffrax.diffeqsolve(diffrax.ODETerm(counted), solver, 0.0, 5.0, dt0, params,
                                  objective, stepsize_controller=controller)
        jax.effects_barrier()
        expected = flow.vector_field_evals(solver, sol.stats["num_steps"])
        assert int(expected) == len(calls)


def test_max_steps_is_reported_not_raised():
    model = sj.UFM(COUNTS, D, init_scale=0.5, key=jax.random.key(0))
    objective = sj.Objective(LABELS, sj.losses.square)
    traj = sj.gradient_flow(model, objective, t1=50.0, max_steps=3)
    assert traj.status == "max_steps"
    assert int(traj.stats["num_steps"]) == 3


def test_divergence_is_reported_not_raised():
    model = sj.UFM(COUNTS, D, init_scale=0.5, key=jax.random.key(0))
    objective = sj.Objective(LABELS, sj.losses.square)
    traj = sj.train(model, objective, optax.sgd(50.0), steps=200, record_every=200)
    assert traj.status == "nonfinite"


def test_bad_input():
    model = sj.UFM(COUNTS, D, init_scale=0.5, key=jax.random.key(0))
    objective = sj.Objective(LABELS, sj.losses.square)
    with pytest.raises(ValueError, match="t1"):
        sj.gradient_flow(model, objective, t1=0.0)
    with pytest.raises(ValueError, match="t1"):
        sj.gradient_flow(model, objective, t1=-3.0)
    with pytest.raises(ValueError, match="num_saves"):
        sj.gradient_flow(model, objective, t1=1.0, num_saves=1)
    with pytest.raises(ValueError, match="ts"):
        sj.gradient_flow(model, objective, ts=[0.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="dt0"):
        sj.gradient_flow(model, objective, t1=1.0, solver=diffrax.Euler())
    with pytest.raises(ValueError, match="record_every"):
        sj.train(model, objective, optax.sgd(0.1), steps=10, record_every=3)
    with pytest.raises(ValueError, match="batch_size"):
        sj.train(model, objective, optax.sgd(0.1), steps=10, batch_size=100,
                 key=jax.random.key(0))


def test_switched_flow_equals_two_flows_and_compiles_once():
    """Deferred re-weighting: a flow whose weights switch at t_s is the flow to t_s followed
    by a flow from its end with the new weights. The switch is a jump time, so the flow steps
    onto it instead of rejecting its way through; one compilation serves every switch time."""
    before, after = np.ones(K), np.asarray(sj.class_weights(COUNTS, 1.0))
    model = sj.UFM(COUNTS, D, init_scale=0.5, key=jax.random.key(2), bias=True)
    objective = lambda w: sj.Objective(LABELS, sj.losses.cross_entropy,  # noqa: E731
                                       class_weights=w, l2=1e-2)
    tol = dict(rtol=1e-12, atol=1e-12)
    traces = eqx.debug.get_num_traces(base.compiled_run)
    for switch in (1.3, 2.9):
        ts = np.array([0.0, 1.0, switch, 4.0, 6.0])
        switched = sj.gradient_flow(
            model, objective(sj.SwitchedWeights(before, after, switch)), ts=ts,
            save_params=True, **tol)
        first = sj.gradient_flow(model, objective(before), ts=ts[:3], **tol)
        second = sj.gradient_flow(first.final, objective(after), ts=ts[2:],
                                  save_params=True, **tol)
        for ours, theirs in zip(jax.tree.leaves(switched.final),
                                jax.tree.leaves(second.final), strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(switched.metrics["loss"][2:], second.metrics["loss"],
                                   rtol=1e-10)
        np.testing.assert_allclose(switched.params.W[2:], second.params.W, rtol=1e-10,
                                   atol=1e-10)
        rejected = [int(run.stats["num_rejected_steps"]) for run in (switched, first, second)]
        assert rejected[0] <= rejected[1] + rejected[2] + 1
    # The switched flows compiled once; each of the two halves once more.
    assert eqx.debug.get_num_traces(base.compiled_run) - traces == 3


def test_ramped_weights_flow_matches_scipy():
    """Weights ramped linearly between two sets: the flow against scipy's solve_ivp on the
    hand-written gradient, integrated piece by piece between the ramp's kinks."""
    before, after = np.asarray(sj.class_weights(COUNTS, 1.0)), np.ones(K)
    start, end, t1 = 1.0, 4.0, 6.0
    model = sj.UFM(COUNTS, D, init_scale=0.5, key=jax.random.key(3), bias=True)
    objective = sj.Objective(LABELS, sj.losses.square, l2=1e-2,
                             class_weights=sj.RampedWeights(before, after, start, end))
    ts = np.array([0.0, 0.5, 2.0, 3.5, 5.0, 6.0])
    traj = sj.gradient_flow(model, objective, ts=ts, save_params=True, rtol=1e-12, atol=1e-14)

    def omega(t):
        return before + np.clip((t - start) / (end - start), 0.0, 1.0) * (after - before)

    theta = np.concatenate([np.ravel(model.W), np.ravel(model.H), np.ravel(model.b)])
    states = {0.0: theta}
    for a, b in [(0.0, start), (start, end), (end, t1)]:
        t_eval = np.union1d(ts[(ts > a) & (ts < b)], [b])
        sol = solve_ivp(lambda t, th: -_numpy_gradient(th, "square", omega(t), 1e-2), (a, b),
                        states[a], method="DOP853", t_eval=t_eval, rtol=1e-13, atol=1e-15)
        states.update(zip(t_eval, sol.y.T, strict=True))
    ref = np.array([states[t] for t in ts])
    p = traj.params
    ours = np.concatenate([p.W.reshape(6, -1), p.H.reshape(6, -1), p.b], axis=1)
    np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-10)
    assert np.max(np.abs(ref[-1] - ref[0])) > 0.1  # the parameters did move
