"""The refill integrator against single runs: every member's records, final parameters and
step counts equal those of `Flow.run` on that member alone, whatever the lanes and order."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssm_jax as sj
from ssm_jax.dynamics import Flat, Leaves, refill
from ssm_jax.dynamics.base import compiled_run, objective_metrics
from ssm_jax.sweeps.padding import pad_examples
from ssm_jax.sweeps.problems import imbalance_problem

SMALL = dict(dim=4, num_classes=3, minority_size=2, init_scale=0.3)


def outputs(model, objective):
    """Light records (compiled fast): the loss and the model's whole output."""
    return {"loss": objective(model), "outputs": model()}


def _padded(problems):
    """The problems padded to one number of examples."""
    size = max(int(objective.labels.shape[0]) for _, objective in problems)
    return [(pad_examples(model, size), pad_examples(objective, size))
            for model, objective in problems]


def _ufm_members():
    """UFM square-loss members of different ratios and powers."""
    return _padded([imbalance_problem(model="ufm", ratio=r, power=p, seed=i, **SMALL)
                    for i, (r, p) in enumerate([(1.0, 0.0), (2.0, 0.5), (4.0, 1.0),
                                                (3.0, 0.0), (8.0, 0.5)])])


def _ssm_members(ratios):
    return [imbalance_problem(model="ssm_class", ratio=r, power=(0.0, 0.5, 1.0)[i % 3], seed=i,
                              **SMALL) for i, r in enumerate(ratios)]


def _stack(members):
    """(params, static, objective) of the members, stacked along a leading axis."""
    parts = [eqx.partition(model, eqx.is_inexact_array) for model, _ in members]
    stack = lambda *xs: jnp.stack(xs)  # noqa: E731
    return (jax.tree.map(stack, *[p for p, _ in parts]), parts[0][1],
            jax.tree.map(stack, *[objective for _, objective in members]))


def _run(flow, members, num_lanes, metrics=outputs, layout=refill.DEFAULT_LAYOUT):
    params, static, objective = _stack(members)
    return refill.refill_run(flow, params, static, objective, metrics, num_lanes=num_lanes,
                             layout=layout)


def _assert_single_runs(out, flow, members, metrics=outputs, positions=None):
    """Member i of `out` is `Flow.run` of members[i] alone: records, final parameters and stop
    time to 1e-10, the same step counts and status. A member cut off at `max_steps` ends on
    an adaptive step's boundary, which round-off moves (a vmapped batch of one `Flow.run`
    moves it as much): its stop time and final parameters are held to 1e-8."""
    for i in range(len(members)) if positions is None else positions:
        params, static = eqx.partition(members[i][0], eqx.is_inexact_array)
        recorded, final, stats = compiled_run(flow, params, static, members[i][1], None,
                                              metrics, False, {})
        assert out.stats.keys() == stats.keys()
        finished = int(stats["status"]) == 0
        np.testing.assert_array_equal(out.stats["status"][i], stats["status"])
        pairs = [(out.recorded, recorded, 1e-10), (out.final, final, 1e-10 if finished else 1e-8),
                 (out.stats, stats, 1e-10)]
        for ours, theirs, rtol in pairs:
            for key, (mine, single) in enumerate(zip(jax.tree.leaves(ours),
                                                     jax.tree.leaves(theirs), strict=True)):
                if jnp.issubdtype(single.dtype, jnp.integer):
                    np.testing.assert_array_equal(mine[i], single)
                else:
                    tol = rtol if finished or ours is not out.stats else 1e-8  # stop_time
                    np.testing.assert_allclose(mine[i], single, rtol=tol, atol=1e-12,
                                               err_msg=f"member {i}, leaf {key}")


def test_refill_equals_single_runs_for_any_lanes_and_order():
    """UFM members of different ratios, one of which hits max_steps (inf records after it, as
    a single run leaves them), in 1 lane (laid out leaf by leaf) and 3 (one flat state), and
    in a shuffled order; one lane wastes no step, and a batch of other values reuses the
    compilation."""
    members = _ufm_members()
    flow = sj.Flow(5.0, num_saves=6, max_steps=11)
    for num_lanes, layout in ((1, Leaves()), (3, Flat())):
        out = _run(flow, members, num_lanes, layout=layout)
        _assert_single_runs(out, flow, members)
        if num_lanes == 1:
            assert float(out.lane_efficiency) == 1.0
    assert set(np.asarray(out.stats["status"]).tolist()) == {0, 1}
    assert np.isinf(np.asarray(out.recorded["loss"])).any()
    order = [3, 0, 4, 2, 1]
    traces = eqx.debug.get_num_traces(refill.compiled_run)
    shuffled = _run(flow, [members[i] for i in order], 3)
    assert eqx.debug.get_num_traces(refill.compiled_run) == traces
    for ours, theirs in zip(jax.tree.leaves(shuffled[:3]), jax.tree.leaves(out[:3]),
                            strict=True):
        np.testing.assert_array_equal(ours, theirs[np.asarray(order)])


def test_unrolled_solver_gives_the_same_lanes():
    """The lanes step an explicit Runge-Kutta solver unrolled either way: a flow whose solver
    is `Unrolled(Tsit5())` gives the very numbers of one with `Tsit5()`."""
    members = _ufm_members()[:3]
    flows = [sj.Flow(5.0, num_saves=4, solver=s) for s in (diffrax.Tsit5(),
                                                            sj.Unrolled(diffrax.Tsit5()))]
    plain, unrolled = (_run(flow, members, 2) for flow in flows)
    for ours, theirs in zip(jax.tree.leaves(unrolled), jax.tree.leaves(plain), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    _assert_single_runs(unrolled, flows[1], members)


def test_class_level_ssm_with_dopri5_in_few_lanes():
    """64 class-level SSM members in 4 lanes with Dopri5 and the objective's full metrics:
    single runs' numbers, and lanes idle only at the end of the queue."""
    members = _ssm_members(np.linspace(1.0, 20.0, 64))
    flow = sj.Flow(40.0, num_saves=5, solver=diffrax.Dopri5(), rtol=1e-7, atol=1e-10)
    out = _run(flow, members, 4, objective_metrics)
    _assert_single_runs(out, flow, members, objective_metrics, positions=[0, 1, 30, 62, 63])
    assert 0.9 < float(out.lane_efficiency) <= 1.0


def test_segmented_switched_run_equals_single_runs_and_reports_progress():
    """Members whose weights switch at their own time (the controller steps onto each one's
    jump time and the solver restarts there), run a few iterations at a time: the number of
    members done grows, and the outputs are the single runs'."""
    members = []
    for i, switch in enumerate((0.7, 1.9, 3.1)):
        model, objective = imbalance_problem(model="ufm", ratio=3.0 + i, seed=i, **SMALL)
        after = np.asarray(objective.class_weights(0.0)) ** 2
        members.append((model, eqx.tree_at(lambda o: o.class_weights, objective,
                                           sj.SwitchedWeights(np.ones(3), after, switch))))
    members, flow = _padded(members), sj.Flow(4.0, num_saves=5)
    params, static, objective = _stack(members)
    state = refill.refill_start(flow, params, static, objective, outputs, num_lanes=2)
    with pytest.raises(ValueError, match="members done"):
        refill.refill_finish(state)
    done = [int(state.members_done)]
    while done[-1] < len(members):
        state = refill.refill_advance(state, 4)
        done.append(int(state.members_done))
    assert done == sorted(done) and len(done) > 2
    _assert_single_runs(refill.refill_finish(state), flow, members)


def test_refill_refuses_bad_input_before_compute():
    members = _ufm_members()[:2]
    params, static, objective = _stack(members)
    with pytest.raises(ValueError, match="event.*map"):
        refill.refill_run(sj.Flow(1.0, event=sj.SteadyState(1e-3)), params, static,
                          objective, outputs, num_lanes=2)
    with pytest.raises(ValueError, match="num_lanes"):
        refill.refill_run(sj.Flow(1.0), params, static, objective, outputs, num_lanes=0)
    with pytest.raises(ValueError, match="`layout` = 'flat' is not allowed"):
        refill.refill_run(sj.Flow(1.0), params, static, objective, outputs, num_lanes=2,
                          layout="flat")
    with pytest.raises(ValueError, match="leading sizes"):
        refill.refill_run(sj.Flow(1.0), _stack(members[:1])[0], static, objective, outputs,
                          num_lanes=2)
    with pytest.raises(ValueError, match="num_iterations"):
        refill.refill_advance(None, 0)
