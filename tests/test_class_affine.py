"""Class-affine coordinates (`Flow(coordinates=ClassAffine())`, or "class_affine") carry the
square-loss UFM's flow exactly: against the flow of the parameters themselves, against the
derived closed form of the aligned start, under padding, events and weight switches, in refill
lanes and sweeps; and they refuse what they do not describe."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssm_jax as sj
from ssm_jax import analytic
from ssm_jax.sweeps.config import ConfiguredProblem
from ssm_jax.sweeps.padding import pad_examples
from ssm_jax.sweeps.problems import imbalance_problem

TIGHT = dict(rtol=1e-11, atol=1e-13, solver=diffrax.Dopri8())
SMALL = dict(model="ufm", num_classes=4, ratio=5.0, minority_size=3, dim=6, init_scale=0.1,
             power=0.5, seed=1)


def _problem(loss="square", l2=0.0, bias=False, schedule=False):
    model, objective = imbalance_problem(loss=loss, l2=l2, **SMALL)
    if bias:  # a bias away from zero, so that its terms are exercised from the start
        model = eqx.tree_at(lambda m: m.b, model, jnp.asarray([0.05, -0.02, 0.0, 0.1]),
                            is_leaf=lambda x: x is None)
    if schedule:
        weights = objective.class_weights.weights
        switched = sj.schedules.SwitchedWeights(jnp.ones_like(weights), weights, 7.0)
        objective = eqx.tree_at(lambda o: o.class_weights, objective, switched)
    return model, objective


def _both(model, objective, **settings):
    """The trajectories in the two coordinates, parameter history included."""
    return [sj.Flow(40.0, num_saves=9, coordinates=c, **settings)(model, objective,
                                                                    save_params=True)
            for c in ("parameters", "class_affine")]


@pytest.mark.parametrize("variant", [dict(), dict(l2=1e-2, bias=True, loss="square_centered",
                                                 schedule=True)])
def test_same_flow_as_the_parameters(variant):
    """Metrics along the way, the parameter history and the final model equal those of the
    flow of the parameters (float64, tight tolerances), with every example's own features:
    plainly, and with every term at once (L2, a bias, centered targets, a weight switch)."""
    theirs, ours = _both(*_problem(**variant), **TIGHT)
    for name, values in theirs.metrics.items():
        np.testing.assert_allclose(ours.metrics[name], values, rtol=1e-8, atol=1e-10,
                                   err_msg=name)
    for mine, single in zip(jax.tree.leaves((ours.final, ours.params)),
                            jax.tree.leaves((theirs.final, theirs.params)), strict=True):
        np.testing.assert_allclose(mine, single, rtol=1e-8, atol=1e-11)
    assert int(ours.stats["status"]) == 0
    assert type(ours.final) is sj.UFM


@pytest.mark.parametrize("power", [0.0, 1.0])
def test_aligned_start_follows_the_closed_form(power):
    spec = sj.StepImbalance(num_classes=4, ratio=16.0, minority_size=2)
    w = sj.class_weights(spec.counts, power)
    model = sj.UFM.aligned(spec.counts, dim=5, init_output=1e-3)
    objective = sj.Objective(spec.labels, sj.losses.square, class_weights=w)
    traj = sj.Flow(400.0, num_saves=50, rtol=1e-11, atol=1e-13,
                   coordinates="class_affine")(model, objective)
    exact = analytic.ufm_class_output(traj.ts, spec.counts, w, 1e-3)
    np.testing.assert_allclose(traj.metrics["class_output"], exact, rtol=1e-6)


def test_padding_changes_nothing():
    """Padding (examples of no class, weight zero, zero features) is outside every class's
    sums: the same records, final features and steps."""
    model, objective = _problem()
    flow = sj.Flow(40.0, num_saves=9, rtol=1e-8, atol=1e-10, coordinates="class_affine")
    plain = flow(model, objective)
    padded = flow(pad_examples(model, 48), pad_examples(objective, 48))
    for name, values in plain.metrics.items():
        np.testing.assert_allclose(padded.metrics[name], values, rtol=1e-12, atol=1e-14)
    n = objective.labels.shape[0]
    np.testing.assert_allclose(padded.final.H[:, :n], plain.final.H, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(padded.final.H[:, n:], 0.0)
    assert int(padded.stats["num_steps"]) == int(plain.stats["num_steps"])


def test_event_reads_the_parameters_flow():
    """A steady-state event sees -grad L of the model read back from the state: it holds at
    the model where the run stops, and the run stops where the flow of the parameters does,
    to a step (events end the step in which they hold; the steps differ)."""
    model, objective = _problem(l2=1e-2)
    event = sj.dynamics.SteadyState(1e-3)
    runs = [sj.Flow(1e4, num_saves=5, rtol=1e-10, atol=1e-12, event=event,
                    coordinates=c)(model, objective) for c in ("parameters", "class_affine")]
    stops = [float(run.stats["stop_time"]) for run in runs]
    assert stops[0] < 1e4
    np.testing.assert_allclose(stops[1], stops[0], rtol=2e-2)
    final = runs[1].final
    params = eqx.filter(final, eqx.is_inexact_array)
    assert bool(event(sj.dynamics.flow.vector_field(final, objective), stops[1], params,
                      objective))


def test_sweep_equals_single_runs():
    """A vectorized sweep in refill lanes (each lane steps its own member; "map" runs
    `Flow.run` itself) gives each member's class-affine flow alone."""
    design = sj.Points(power=[0.0, 1.0, 0.5], seed=[0, 1, 2])
    problem = ConfiguredProblem(fixed=tuple(sorted(dict(
        model="ufm", loss="square", num_classes=3, ratio=3.0, minority_size=2, dim=4,
        init_scale=0.3).items())))
    flow = sj.Flow(30.0, num_saves=6, rtol=1e-8, atol=1e-10, coordinates="class_affine")
    ds = sj.sweep(problem, design, dynamics=flow, vectorized=True,
                  batching=sj.sweeps.Refill(lanes=2))
    for i in range(3):
        single = flow(*problem(power=design.axes["power"][i], seed=design.axes["seed"][i]))
        np.testing.assert_allclose(ds.loss.isel(point=i).values, single.metrics["loss"],
                                   rtol=1e-10, err_msg=f"member {i}")
        assert int(ds.num_steps.isel(point=i)) == int(single.stats["num_steps"])


@pytest.mark.parametrize("case", ["cross entropy", "SSM", "uneven weights", "name"])
def test_refuses_what_it_does_not_describe(case):
    model, objective = _problem()
    flow = sj.Flow(10.0, coordinates="class_affine")
    if case == "cross entropy":
        model, objective = _problem(loss="cross_entropy")
        match = "square loss"
    elif case == "SSM":
        model, objective = imbalance_problem(**dict(SMALL, model="ssm"))
        match = "square loss|UFM"
    elif case == "uneven weights":
        q = np.ones(objective.labels.shape[0])
        q[0] = 2.0
        objective = eqx.tree_at(lambda o: o.example_weights, objective, jnp.asarray(q))
        match = "one weight per class"
    else:
        with pytest.raises(ValueError, match="coordinates.*'parameters', 'class_affine'"):
            sj.Flow(10.0, coordinates="affine")
        with pytest.raises(ValueError, match="`coordinates` = ClassAffine is not allowed: "
                                             "pass an instance, e.g. ClassAffine()"):
            sj.Flow(10.0, coordinates=sj.ClassAffine)
        with pytest.raises(ValueError, match="`coordinates` = 3 is not allowed: expected one "
                                             "of 'parameters', 'class_affine', or an "
                                             "AbstractCoordinates instance"):
            sj.dynamics.coordinates_named(3)
        return
    with pytest.raises(ValueError, match=match):
        flow(model, objective)


def test_uneven_weights_in_a_traced_build_fail_the_run():
    """Where the weights are traced (a vectorized build), uneven weights within a class cannot
    be refused up front: the run starts from NaN and reports "nonfinite", never a number."""
    model, objective = _problem()
    q = np.ones((2, objective.labels.shape[0]))
    q[1, 0] = 2.0
    params, static = eqx.partition(model, eqx.is_inexact_array)
    flow = sj.Flow(10.0, num_saves=3, coordinates="class_affine")
    run = jax.jit(lambda p, q: flow.run(
        p, static, eqx.tree_at(lambda o: o.example_weights, objective, q), None,
        lambda m, o: {"loss": o(m)}))
    for weights, status in zip(q, ("ok", "nonfinite"), strict=True):
        recorded, _, stats = run(params, weights)
        assert sj.dynamics.STATUS[int(stats["status"])] == status
        assert bool(jnp.all(jnp.isfinite(recorded["loss"]))) == (status == "ok")


def feature_norms(model, objective):
    return {"norms": jnp.linalg.norm(model.H, axis=0)}


def test_metrics_may_read_the_features():
    """A metric that reads `model.H` gets every example's features, formed on request."""
    theirs, ours = [sj.Flow(40.0, num_saves=5, coordinates=c, **TIGHT)(
        *_problem(l2=1e-2), metrics=feature_norms) for c in ("parameters", "class_affine")]
    np.testing.assert_allclose(ours.metrics["norms"], theirs.metrics["norms"], rtol=1e-8)


def test_coordinates_are_modules_named_in_one_place():
    """A name and its instance make the same flow (equal, one compilation, the same numbers);
    the flow keeps settings only, and describes its coordinates by name."""
    for name, kind in (("parameters", sj.Parameters), ("class_affine", sj.ClassAffine)):
        assert sj.dynamics.coordinates_named(name) == kind() and kind.name == name
        named, given = (sj.Flow(10.0, num_saves=3, coordinates=c) for c in (name, kind()))
        assert named == given and isinstance(given.coordinates, sj.AbstractCoordinates)
        assert not jax.tree.leaves(eqx.filter(given.coordinates, eqx.is_array))
        assert given.describe()["coordinates"] == name
    model, objective = _problem()
    traj = [sj.Flow(10.0, num_saves=3, coordinates=c)(model, objective)
            for c in ("class_affine", sj.ClassAffine())]
    np.testing.assert_array_equal(traj[0].metrics["loss"], traj[1].metrics["loss"])
