"""The step-imbalance problem as a problem contract, the registry of names, and models and
objectives that pad themselves."""

import jax
import numpy as np
import optax
import pytest

import ssm_jax as sj
from ssm_jax.sweeps import pad_examples, problems, registry
from ssm_jax.sweeps.config import ConfiguredProblem
from ssm_jax.sweeps.problem import AbstractProblem, as_problem

FIXED = {"num_classes": 4, "minority_size": 2, "dim": 4}
SETTINGS = {"ratio": np.array([2.0, 4.0, 2.0]), "power": np.array([0.0, 1.0, 0.0])}


def test_imbalance_problem_is_a_problem_with_fixed_settings():
    assert isinstance(sj.sweeps.imbalance_problem, problems.ImbalanceProblem)
    assert as_problem(problems.imbalance_problem) is problems.imbalance_problem
    problem = problems.ImbalanceProblem(**FIXED)
    assert isinstance(problem, AbstractProblem)
    ours = problem(ratio=3.0, seed=1, pad_to=20)
    theirs = problems.imbalance_problem(**FIXED, ratio=3.0, seed=1, pad_to=20)
    assert jax.tree.all(jax.tree.map(np.array_equal, ours, theirs))
    with pytest.raises(ValueError, match="`bogus` = 1 is not allowed"):
        problems.ImbalanceProblem(bogus=1)


def test_the_contract_on_a_design_s_arrays():
    problem = problems.ImbalanceProblem(**FIXED)
    np.testing.assert_array_equal(problem.num_examples(SETTINGS),
                                  problems.num_examples(**FIXED, **SETTINGS))
    problem.check_settings(SETTINGS)
    with pytest.raises(ValueError, match="`ratio` = 0.5"):
        problem.check_settings({"ratio": np.array([0.5])})
    points = [dict(FIXED, ratio=r.item(), power=p.item()) for r, p in
              zip(*SETTINGS.values(), strict=True)]
    predicted = problem.predict(SETTINGS)["predicted_ratio"]
    np.testing.assert_array_equal(predicted, [problems.predicted_ratio(**p) for p in points])
    flow = sj.Flow(t1=100.0)
    np.testing.assert_array_equal(problem.cost(SETTINGS, flow),
                                  [problems.predicted_steps(t1=100.0, **p) for p in points])
    assert problem.cost(SETTINGS, sj.Train(optax.sgd(0.1), steps=10)) is None
    # No closed form for the cross-entropy.
    entropy = problems.ImbalanceProblem(loss="cross_entropy", **FIXED)
    assert np.isnan(entropy.predict(SETTINGS)["predicted_ratio"]).all()


def test_a_configured_problem_sets_its_hyperparameters_aside():
    problem = ConfiguredProblem(tuple(sorted(FIXED.items())), (("learning_rate", 0.1),),
                                ordered=False)
    settings = dict(SETTINGS, learning_rate=np.array([0.1, 0.2, 0.3]))
    assert problem.cost(settings, sj.Flow(t1=100.0)) is None
    np.testing.assert_array_equal(problem.predict(settings)["predicted_ratio"],
                                  problems.ImbalanceProblem(**FIXED).predict(
                                      SETTINGS)["predicted_ratio"])
    _, _, hyper = problem(ratio=2.0, learning_rate=0.3)
    assert hyper == {"learning_rate": 0.3}


def test_the_registry_names_the_parameter():
    assert registry.loss_named("square") is sj.losses.square
    assert registry.model_named("ssm_class").class_level
    kind, loss = registry.run_named("ufm_ce")
    assert not kind.fits_target and loss is sj.losses.cross_entropy
    with pytest.raises(ValueError, match="`problem.model` = 'cnn' is not allowed"):
        registry.model_named("cnn", "problem.model")
    with pytest.raises(ValueError, match="`loss` = 'hinge' is not allowed"):
        problems.imbalance_problem(loss="hinge")


def test_models_and_objectives_pad_themselves():
    deep = sj.DeepLinear(2, 3, 2, num_examples=5, key=jax.random.key(0))
    padded = deep.pad_examples(8)
    assert padded.features.shape == (3, 8) and not np.any(padded.features[:, 5:])
    on_inputs = sj.DeepLinear(2, 3, 2, in_features=5, key=jax.random.key(0))
    assert on_inputs.pad_examples(8) is on_inputs
    objective = sj.Objective(np.array([0, 0, 1]), sj.losses.cross_entropy,
                             inputs=np.ones((3, 2)))
    padded = pad_examples(objective, 5)
    np.testing.assert_array_equal(padded.labels, [0, 0, 1, -1, -1])
    np.testing.assert_array_equal(padded.example_weights, [1, 1, 1, 0, 0])
    assert padded.inputs.shape == (5, 2) and not np.any(padded.inputs[3:])
    fit = pad_examples(sj.TargetFit(sj.label_matrix([2, 1])), 5)
    np.testing.assert_array_equal(fit.labels, [0, 0, 1, -1, -1])
    with pytest.raises(ValueError, match="`size` = 2 is not allowed"):
        pad_examples(objective, 2)
    with pytest.raises(ValueError, match="cannot be padded"):
        pad_examples(object(), 5)
