"""The unrolled explicit Runge-Kutta step against diffrax's `solver.step`: the same outputs
(solution, error estimate, dense output, FSAL state), on first and later steps, after a jump
and under `jax.vmap`; and a `Flow` whose solver is `Unrolled` against one stepping with diffrax's
own."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssm_jax as sj
from ssm_jax.dynamics import erk
from ssm_jax.dynamics.diffrax_loop import ForwardTerm
from ssm_jax.sweeps.problems import imbalance_problem


def field(t, y, args):
    """A nonlinear, time-dependent field on a pytree state."""
    return {"a": -args * y["a"] * jnp.sin(3 * t) + jnp.sum(y["b"][:2] ** 2),
            "b": jnp.tanh(y["b"]) * t - y["a"][0] * y["b"]}


TERMS = ForwardTerm(diffrax.ODETerm(field))
Y0 = {"a": jnp.array([1.0, -2.0, 0.5]), "b": jnp.linspace(-1.0, 1.0, 4)}
SOLVERS = [diffrax.Tsit5(), diffrax.Dopri5(), diffrax.Bosh3(), diffrax.Heun(), diffrax.Ralston()]


def _assert_same(ours, theirs):
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for mine, other in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_allclose(np.asarray(mine, float), np.asarray(other, float),
                                   rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
def test_unrolled_steps_equal_diffrax_steps(solver):
    """Three steps, each implementation carrying its own solver state, the third after a jump
    (an FSAL solver re-evaluates its first stage there)."""
    assert erk.unrolls(solver)
    times, jumps = (0.0, 0.1, 0.25, 0.3), (False, False, True)
    ours = theirs = (Y0, None, None, solver.init(TERMS, 0.0, 0.1, Y0, 0.7), None)
    for t0, t1, made_jump in zip(times[:-1], times[1:], jumps, strict=True):
        ours = jax.jit(erk.step, static_argnums=(0, 1))(
            solver, TERMS, t0, t1, ours[0], 0.7, ours[3], made_jump)
        theirs = jax.jit(solver.step, static_argnums=0)(
            TERMS, t0, t1, theirs[0], 0.7, theirs[3], made_jump)
        _assert_same(ours, theirs)
    assert not np.allclose(ours[0]["a"], Y0["a"])


@pytest.mark.parametrize("solver", [diffrax.Tsit5(), diffrax.Bosh3()],
                         ids=lambda s: type(s).__name__)
def test_fsal_state_under_vmap_is_member_by_member(solver):
    """A batch whose stored first stages are wrong: each member's step is its step alone,
    the stored stage used except on its own first step (a wrong one shows in the result)."""
    args, t1 = jnp.array([0.3, 0.7, 1.1]), jnp.array([0.05, 0.1, 0.2])
    ys = jax.tree.map(lambda x: jnp.stack([x, 2 * x, -x]), Y0)
    wrong = jax.tree.map(jnp.zeros_like, ys)

    def ours(t1, y, a, state):
        return erk.step(solver, TERMS, 0.0, t1, y, a, state, False)

    for first_step in ([False] * 3, [False, True, False]):
        mine = jax.jit(jax.vmap(ours))(t1, ys, args, (jnp.array(first_step), wrong))
        for i, first in enumerate(first_step):
            member = jax.tree.map(lambda x, i=i: x[i], (t1, ys, args, wrong))
            alone = solver.step(TERMS, 0.0, member[0], member[1], member[2],
                                (jnp.array(first), member[3]), False)
            _assert_same(jax.tree.map(lambda x, i=i: x[i], mine), alone)
            fresh = solver.step(TERMS, 0.0, member[0], member[1], member[2],
                                (jnp.array(True), member[3]), False)
            assert np.allclose(alone[0]["a"], fresh[0]["a"], rtol=1e-12) == first


def test_other_solvers_take_diffrax_step():
    """Solvers without one explicit tableau; the tests above cover FSAL and other tableaus."""
    assert {solver.tableau.fsal for solver in SOLVERS} == {True, False}
    solver = diffrax.Euler()
    assert not erk.unrolls(solver) and not erk.unrolls(diffrax.Kvaerno3())
    _assert_same(erk.step(solver, TERMS, 0.0, 0.1, Y0, 0.7, None, False),
                 solver.step(TERMS, 0.0, 0.1, Y0, 0.7, None, False))


@pytest.mark.parametrize("solver", [diffrax.Tsit5(), diffrax.Dopri5()],
                         ids=lambda s: type(s).__name__)
def test_flows_unrolled_take_diffrax_steps(solver):
    """A `Flow` whose solver is `Unrolled`: the numbers of diffrax's own step up to round-off,
    the very same steps and as many vector-field evaluations."""
    model, objective = imbalance_problem(num_classes=4, minority_size=3, ratio=5.0, power=0.5,
                                         dim=6, init_scale=1e-2, seed=3)
    ours, theirs = (sj.Flow(400.0, num_saves=30, solver=s, rtol=1e-6, atol=1e-9)(
        model, objective) for s in (sj.Unrolled(solver), solver))
    assert int(ours.stats["num_steps"]) > 20
    for name in ("num_steps", "num_accepted_steps", "num_rejected_steps",
                 "num_vector_field_evals"):
        assert int(ours.stats[name]) == int(theirs.stats[name]), name
    for name, values in theirs.metrics.items():
        np.testing.assert_allclose(ours.metrics[name], values, rtol=1e-11, atol=1e-14,
                                   err_msg=name)


def test_only_explicit_tableaux_unroll():
    """`Unrolled` refuses implicit solvers, solvers without one tableau and itself; `unrolled`
    wraps what it can and leaves the rest as it is."""
    assert not erk.unrolls(diffrax.Kvaerno5()) and not erk.unrolls(diffrax.Euler())
    for solver, name in ((diffrax.Kvaerno5(), "Kvaerno5"), (diffrax.Euler(), "Euler"),
                         (erk.Unrolled(diffrax.Tsit5()), "Unrolled")):
        with pytest.raises(ValueError, match=f"`solver` = {name} is not allowed: expected an "
                                             "explicit Runge-Kutta solver"):
            erk.Unrolled(solver)
    wrapped = sj.Unrolled(diffrax.Tsit5())
    assert isinstance(wrapped, diffrax.AbstractERK) and wrapped.order(TERMS) == 5
    assert not erk.unrolls(wrapped) and erk.stepped(wrapped) == diffrax.Tsit5()
    assert sj.dynamics.unrolled(diffrax.Tsit5()) == wrapped
    for solver in (wrapped, diffrax.Kvaerno5(), diffrax.Euler()):
        assert sj.dynamics.unrolled(solver) is solver


def test_a_flow_unrolled_by_tree_at():
    """A sweep unrolls a flow's solver with `eqx.tree_at`: the flow stays one that compiles
    alike, and describes its method and how it steps."""
    flow = sj.Flow(10.0, num_saves=3, solver=diffrax.Dopri5())
    unrolled = eqx.tree_at(lambda f: f.solver, flow, erk.unrolled(flow.solver))
    assert unrolled.solver == erk.Unrolled(diffrax.Dopri5()) and flow.solver == diffrax.Dopri5()
    assert unrolled.describe() == dict(flow.describe(), unrolled=True)
    assert flow.describe()["solver"] == "Dopri5" and not flow.describe()["unrolled"]
    assert isinstance(unrolled.stepsize_controller, diffrax.PIDController)
    assert sj.Flow(10.0, solver=sj.Unrolled(diffrax.Tsit5())).describe()["solver"] == "Tsit5"
