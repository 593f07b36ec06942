"""Vectorized builds: `imbalance_problem` traced once under `vmap` over a design's arrays
builds the very members that Python builds one by one (padded to the same size), and bad
settings are refused on the arrays, before anything is traced."""

import functools

import equinox as eqx
import jax
import numpy as np
import pytest

import ssm_jax as sj
from ssm_jax.data.imbalance import padded_labels, step_counts
from ssm_jax.dynamics import objective_metrics
from ssm_jax.sweeps.execute import ChunkRunner
from ssm_jax.sweeps.member_checks import check_members
from ssm_jax.sweeps.padding import pad_problem
from ssm_jax.sweeps.problem import as_problem
from ssm_jax.sweeps.problems import (
    ImbalanceProblem,
    check_settings,
    imbalance_problem,
    num_examples,
)
from ssm_jax.sweeps.vectorized import build_batch, check_vectorized

SETTINGS = {"ratio": np.array([1.0, 2.5, 3.0, 1.35]), "power": np.array([0.0, 0.5, 1.0, 0.3]),
            "init_scale": np.array([0.1, 0.2, 0.3, 0.05]), "seed": np.array([0, 1, 2, 7]),
            "l2": np.array([0.0, 0.1, 0.0, 0.2]), "majority_fraction": np.array([.5, .5, .25, .75])}
FIXED = {"num_classes": 4, "minority_size": 2, "dim": 3}
CASES = [("ufm", "cross_entropy"), ("ssm", "square_centered"), ("ssm_class", "square"),
         ("deep_ufm", "square_centered")]


def _leaves(tree):
    return jax.tree_util.tree_leaves(tree)


@pytest.mark.parametrize("model, loss", CASES)
def test_vectorized_members_equal_python_built_ones(model, loss):
    make_problem = functools.partial(imbalance_problem, model=model, loss=loss, **FIXED)
    sizes = num_examples(model=model, **FIXED, **SETTINGS)
    pad_to = int(sizes.max()) + 3  # every member padded, the largest too
    members = np.arange(4)
    (params, objectives, _, keys), (model_static, objective_static) = build_batch(
        make_problem, SETTINGS, members, pad_to, seed=5)
    for i in members:
        net, objective = make_problem(**{name: v[i].item() for name, v in SETTINGS.items()})
        assert objective.labels.shape[0] == sizes[i]
        net, objective, _ = pad_problem((net, objective, {}), pad_to)
        mine = jax.tree_util.tree_map(lambda x, i=i: x[i], (params, objectives))
        theirs = (eqx.filter(net, eqx.is_inexact_array), eqx.filter(objective, eqx.is_array))
        assert jax.tree_util.tree_structure(mine) == jax.tree_util.tree_structure(theirs)
        for a, b in zip(_leaves(mine), _leaves(theirs), strict=True):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
        assert eqx.tree_equal(eqx.partition(net, eqx.is_inexact_array)[1], model_static)
    np.testing.assert_array_equal(jax.random.key_data(keys), jax.random.key_data(
        jax.vmap(lambda i: jax.random.fold_in(jax.random.key(5), i))(members)))


def test_vectorized_runner_batches_like_the_python_runner():
    make_problem = functools.partial(imbalance_problem, model="ufm", **FIXED)
    flow = sj.Flow(t1=1.0, num_saves=2)
    runners = [ChunkRunner(as_problem(make_problem), points, 20, flow, objective_metrics,
                           sj.sweeps.Map(), seed=3,
                           vectorized=vectorized) for points, vectorized in
               (([{n: v[i].item() for n, v in SETTINGS.items()} for i in range(4)], False),
                (SETTINGS, True))]
    members = np.array([3, 1, 1])
    (python, python_static), (vector, vector_static) = (r.batch(members, 18) for r in runners)
    assert eqx.tree_equal(python_static, vector_static)
    for a, b in zip(_leaves(python[:3]), _leaves(vector[:3]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    model, objective, _ = runners[1].member(2)
    assert objective.labels.shape == (20,) and float(objective.l2) == 0.0


def test_initial_draws_do_not_depend_on_padding():
    """A model drawn for more examples extends the draw for fewer: the vectorized build draws
    at the padded size, Python at each member's own."""
    key = jax.random.key(3)
    small, large = (sj.UFM(np.array([n, 2]), 5, init_scale=0.1, key=key) for n in (3, 9))
    np.testing.assert_array_equal(small.W, large.W)
    np.testing.assert_array_equal(small.H, large.H[:, :5])
    small, large = (sj.DeepLinear(2, 4, 2, num_examples=n, key=key) for n in (5, 11))
    np.testing.assert_array_equal(small.features, large.features[:, :5])


def test_traceable_counts_and_labels_match_the_concrete_ones():
    # 1.25 * 10 = 12.5 and 1.35 * 10 = 13.5: half-way cases round to even, as `round` does.
    for ratio, fraction in [(1.0, 0.5), (1.25, 0.5), (1.35, 0.3), (7.3, 0.7), (99.96, 0.5)]:
        counts = sj.StepImbalance(6, ratio, 10, fraction).counts
        traced = jax.jit(lambda r, f: step_counts(6, r, 10, f))(ratio, fraction)
        np.testing.assert_array_equal(np.asarray(traced), counts)
        labels = np.asarray(padded_labels(counts.astype(float), counts.sum() + 3))
        np.testing.assert_array_equal(labels, np.r_[sj.labels_from_counts(counts), [-1] * 3])
    np.testing.assert_array_equal(num_examples(num_classes=4, minority_size=2,
                                               ratio=np.array([1.0, 2.5])), [8, 14])
    assert num_examples(model="ssm_class", num_classes=4, ratio=np.array([3.0]))[0] == 4


@pytest.mark.parametrize("settings, match", [
    ({"ratio": np.array([2.0, 0.5])}, r"`ratio` = 0.5 at point 1 is not allowed: expected "
                                      r"finite values in \[1.0, inf\]"),
    ({"init_scale": np.array([1e-3, 1e-2, 0.0])}, r"`init_scale` = 0.0 at point 2"),
    ({"l2": np.array([-1.0])}, r"`l2` = -1.0 at point 0"),
    ({"power": np.array([0.0, np.inf])}, r"`power` = inf at point 1"),
    ({"seed": np.array([0.5, 1.0])}, r"`seed` = 0.5 at point 0 is not allowed: expected int"),
    ({"majority_fraction": np.array([0.5, 0.1])}, r"`majority_fraction` = 0.1 at point 1 gives "
                                                  r"0 majority classes out of 4"),
    ({"dim": np.array([2, 3])}, r"`dim` cannot vary in a vectorized sweep"),
])
def test_bad_settings_are_refused_on_the_arrays(settings, match):
    with pytest.raises(ValueError, match=match):
        check_settings(settings, **FIXED)


def test_the_python_path_keeps_its_messages():
    with pytest.raises(ValueError, match=r"`ratio` = 0.5 is not allowed: expected finite "
                                         r"values in \[1.0, inf\]"):
        imbalance_problem(ratio=0.5)
    with pytest.raises(ValueError, match=r"`init_scale` = -1.0 is not allowed"):
        imbalance_problem(init_scale=-1.0)
    with pytest.raises(ValueError, match=r"`pad_to` = 5 is not allowed: expected at least 14"):
        imbalance_problem(num_classes=4, minority_size=2, ratio=2.5, pad_to=5)


def test_check_vectorized_finds_the_bound_and_the_shapes():
    problem = ImbalanceProblem(model="ufm", **FIXED)  # checks and sizes from the contract
    plain = as_problem(functools.partial(imbalance_problem, model="ufm", **FIXED))  # none
    flow = sj.Flow(t1=1.0, num_saves=3)
    checked = check_vectorized(problem, SETTINGS, flow, objective_metrics)
    points = [{n: v[i].item() for n, v in SETTINGS.items()} for i in range(4)]
    reference = check_members(plain, points, flow, objective_metrics)
    assert checked.pad_to == reference.pad_to == 14
    np.testing.assert_array_equal(checked.num_examples, reference.num_examples)
    assert jax.tree_util.tree_map(lambda x: (x.shape, x.dtype), checked.metric_shapes) == \
        jax.tree_util.tree_map(lambda x: (x.shape, x.dtype), reference.metric_shapes)
    with pytest.raises(ValueError, match=r"`ratio` = 0.9 at point 1"):
        check_vectorized(problem, {"ratio": np.array([1.0, 0.9])}, flow, objective_metrics)
    with pytest.raises(ValueError, match=r"`pad_to` = None is not allowed with traced"):
        check_vectorized(plain, {"ratio": np.array([1.0, 2.0])}, flow, objective_metrics)
    with pytest.raises(ValueError, match=r"`pad_to` = 9 is not allowed: expected at least 14"):
        check_vectorized(problem, SETTINGS, flow, objective_metrics, 9)
