"""Bad input is refused at the boundary, before any compute, with a `ValueError` whose message
names the parameter, its value and what is allowed; traced and abstract values pass."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ssm_jax as sj
from ssm_jax import analytic, losses
from ssm_jax.dynamics import NetworkData, base
from ssm_jax.metrics.separable import SeparableMetrics

COUNTS = np.array([4, 2, 1])
LABELS = sj.labels_from_counts(COUNTS)
SGD = optax.inject_hyperparams(optax.sgd)


def _ufm(counts=COUNTS, dim=2):
    return sj.UFM(counts, dim, init_scale=0.5, key=jax.random.key(0))


def _objective(loss=losses.square):
    return sj.Objective(LABELS, loss)


def _refused(build, *parts):
    """`build()` raises a ValueError whose message holds every one of `parts`."""
    with pytest.raises(ValueError) as info:
        build()
    message = str(info.value)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


CLOSED_FORMS = {
    "mode_strength a0 < 0": (lambda: analytic.mode_strength(1.0, 2.0, -0.1, 10),
                             ["`init_strength`", "-0.1", "(0.0, inf]"]),
    "mode_strength a0 = 0": (lambda: analytic.mode_strength(1.0, 2.0, 0.0, 10),
                             ["`init_strength`", "0.0", "(0.0, inf]"]),
    "mode_strength s < 0": (lambda: analytic.mode_strength(1.0, -2.0, 0.1, 10),
                            ["`s`", "-2.0", "(0.0, inf]"]),
    "mode_strength n = 0": (lambda: analytic.mode_strength(1.0, 2.0, 0.1, 0),
                            ["`num_examples`", "0", "(0.0, inf]"]),
    "half_learning_time a0 = 0": (lambda: analytic.half_learning_time(2.0, 0.0, 10),
                                  ["`init_strength`", "0.0", "(0.0, inf]"]),
    "mode_strength_ode a0 < 0": (
        lambda: analytic.mode_strength_ode([0.0, 1.0], 1.0, -0.1, 10, 3),
        ["`init_strength`", "-0.1", "(0.0, inf]"]),
    "learning_times a0 < 0": (lambda: analytic.learning_times(COUNTS, 0.0, -1e-4),
                              ["`init_strength`", "-0.0001", "(0.0, inf]"]),
    "learning_times a0 shape": (lambda: analytic.learning_times(COUNTS, 0.0, np.ones(2)),
                                ["`init_strength`", "(2,)", "(3,)"]),
    "learning_time_ratio a0 = 0": (lambda: sj.learning_time_ratio(COUNTS, 1.0, 0.0),
                                   ["`init_strength`", "0.0", "(0.0, inf]"]),
    "ufm_class_output z0 < 0": (lambda: analytic.ufm_class_output([1.0], COUNTS, None, -0.1),
                                ["`init_output`", "-0.1", "(0.0, inf]"]),
    "ufm_half_learning_time z0 = 0": (
        lambda: analytic.ufm_half_learning_time(COUNTS, None, 0.0),
        ["`init_output`", "0.0", "(0.0, inf]"]),
    "ufm_growth_rates negative weight": (
        lambda: analytic.ufm_growth_rates(COUNTS, np.array([1.0, -1.0, 1.0])),
        ["`weights`", "-1.", "[0.0, inf]"]),
    "ufm_growth_rates NaN weight": (
        lambda: analytic.ufm_growth_rates(COUNTS, np.array([1.0, np.nan, 1.0])),
        ["`weights`", "nan", "finite"]),
    "ufm_growth_rates weights shape": (
        lambda: analytic.ufm_growth_rates(COUNTS, np.ones(2)), ["`weights`", "(2,)", "(3,)"]),
    "effective_init_output counts": (
        lambda: analytic.effective_init_output(_ufm().W, _ufm().H, np.array([1, 1])),
        ["`W`", "(3, 2)", "(2, 2)"]),
    "effective_init_strength modes": (
        lambda: analytic.effective_init_strength(_ufm().W, _ufm().H, np.eye(2), np.eye(7)),
        ["`U`", "(2, 2)", "(3, r)"]),
    "max_margin support_tol": (
        lambda: sj.max_margin(np.eye(2), np.array([1, -1]), support_tol=-1.0),
        ["`support_tol`", "-1.0", "(0, 1)"]),
    "measured_offsets t = 0": (
        lambda: analytic.measured_offsets(np.ones(2), 0.0, np.eye(2), np.array([1, -1])),
        ["`t`", "0.0", "> 0"]),
    "max_margin no features": (lambda: sj.max_margin(np.ones((2, 0)), np.array([1, -1])),
                               ["`inputs`", "(2, 0)", "n, p >= 1"]),
}

METRICS = {
    "learning_time level 2": (
        lambda: sj.learning_time(jnp.arange(3.0), jnp.full((3, 2), 0.3), 2.0),
        ["`level`", "2.0", "(0.0, 1.0)"]),
    "learning_time level 0": (
        lambda: sj.learning_time(jnp.arange(3.0), jnp.full((3, 2), 0.3), 0.0),
        ["`level`", "0.0", "(0.0, 1.0)"]),
    "learning_time level 1": (
        lambda: sj.learning_time(jnp.arange(3.0), jnp.full((3, 2), 0.3), 1.0),
        ["`level`", "1.0", "(0.0, 1.0)"]),
    "learning_time level NaN": (
        lambda: sj.learning_time(jnp.arange(3.0), jnp.full((3, 2), 0.3), np.nan),
        ["`level`", "nan", "(0.0, 1.0)"]),
    "learning_time times and curves": (
        lambda: sj.learning_time(jnp.arange(4.0), jnp.ones((3, 2))),
        ["`ts`", "`progress`", "(4,)", "(3, 2)"]),
    "class_means no classes": (lambda: sj.class_means(jnp.ones(3), jnp.arange(3), 0),
                               ["`num_classes`", "0", ">= 1"]),
    "class_means lengths": (lambda: sj.class_means(jnp.ones(3), jnp.arange(2), 2),
                            ["`values`", "(3,)", "(2,)"]),
    "mode_strengths modes": (
        lambda: sj.mode_strengths(jnp.ones((3, 5)), jnp.ones((3, 2)), jnp.ones((4, 2))),
        ["`V`", "(4, 2)", "(5, 2)"]),
    "SeparableMetrics empty probe": (lambda: SeparableMetrics(np.ones((0, 2))),
                                     ["`probe`", "(0, 2)", "m, p >= 1"]),
    "SeparableMetrics NaN probe": (lambda: SeparableMetrics(np.array([[np.nan, 1.0]])),
                                   ["`probe`", "nan", "finite"]),
}

MODELS = {
    "SSM shape of one number": (lambda: sj.SSM((3,), 2, key=jax.random.key(0)),
                                ["`shape`", "(3,)", "(k, m)"]),
    "SSM negative shape": (lambda: sj.SSM((3, -1), 2, key=jax.random.key(0)),
                           ["`shape[1]`", "-1", ">= 1"]),
    "UFM.aligned dim 3.5": (lambda: sj.UFM.aligned(COUNTS, 3.5, 0.1),
                            ["`dim`", "3.5", "integer"]),
    "UFM.aligned init_output shape": (lambda: sj.UFM.aligned(COUNTS, 3, np.ones(2)),
                                      ["`init_output`", "(2,)", "(3,)"]),
    "SSM.aligned init_strength shape": (
        lambda: sj.SSM.aligned(sj.label_matrix(COUNTS), 3, np.array([0.1, 0.2])),
        ["`init_strength`", "(2,)", "(3,)"]),
    "SSM.aligned zero target": (lambda: sj.SSM.aligned(np.zeros((2, 3)), 3, 0.1),
                                ["`target`", "zero"]),
    "DeepLinear width 0": (lambda: sj.DeepLinear(2, 0, 2, in_features=3, key=jax.random.key(0)),
                           ["`width`", "0", ">= 1"]),
    "DeepLinear.aligned narrow": (
        lambda: sj.DeepLinear.aligned(sj.label_matrix(COUNTS), 2, 2, 0.1, free_features=True),
        ["`width`", "2", ">= 3"]),
    "CNN one channel count": (lambda: sj.CNN(10, (16,), key=jax.random.key(0)),
                              ["`channels`", "(16,)", "two integers"]),
    "MLP without key": (lambda: sj.MLP(10, key=None), ["`key`", "None"]),
    "PolynomialTail alpha < 0": (lambda: losses.PolynomialTail(-1.0),
                                 ["`alpha` = -1.0", "(0.0, inf]"]),
    "PolynomialTail alpha vector": (lambda: losses.PolynomialTail(np.ones(2)),
                                    ["`alpha`", "(2,)", "scalar"]),
}

OBJECTIVES = {
    "no labels": (lambda: sj.Objective(np.array([], int), losses.square),
                  ["`labels`", "(0,)", "at least one"]),
    "all weights zero": (lambda: sj.Objective(LABELS, losses.square, example_weights=np.zeros(7)),
                         ["`example_weights`", "all zero", "positive"]),
    "NaN inputs": (lambda: sj.Objective(np.array([1, -1]), losses.logistic,
                                        inputs=np.array([[np.nan, 1.0], [1.0, 1.0]])),
                   ["`inputs`", "nan", "finite"]),
    "inputs rows": (
        lambda: sj.Objective(np.array([1, -1]), losses.logistic, inputs=np.ones((3, 2))),
        ["`inputs`", "(3, 2)", "(2, ...)"]),
    "empty target": (lambda: sj.TargetFit(np.ones((2, 0))), ["`target`", "(2, 0)", "k, m >= 1"]),
    "modes not a triplet": (lambda: sj.TargetFit(sj.label_matrix(COUNTS), modes=(1, 2)),
                            ["`modes`", "(1, 2)", "(U, s, V)"]),
    "minibatch of 0": (lambda: _objective().minibatch(jax.random.key(0), 0),
                       ["`batch_size`", "0", ">= 1"]),
    "minibatch larger than n": (lambda: _objective().minibatch(jax.random.key(0), 8),
                                ["`batch_size`", "8", "<= n = 7"]),
}

DYNAMICS = {
    "negative rtol": (lambda: sj.Flow(1.0, rtol=-1e-6), ["`rtol`", "-1e-06", "(0.0, inf]"]),
    "negative rtol, fixed step": (
        lambda: sj.Flow(1.0, solver=diffrax.Euler(), dt0=0.1, rtol=-1.0),
        ["`rtol`", "-1.0", "(0.0, inf]"]),
    "atol 0": (lambda: sj.Flow(1.0, atol=0.0), ["`atol`", "0.0", "(0.0, inf]"]),
    "solver as a string": (lambda: sj.Flow(1.0, solver="Tsit5"),
                           ["`solver`", "'Tsit5'", "diffrax.Tsit5()"]),
    "solver as a class": (lambda: sj.Flow(1.0, solver=diffrax.Tsit5),
                          ["`solver` = Tsit5", "instance", "diffrax.Tsit5()"]),
    "Euler without dt0": (lambda: sj.Flow(1.0, solver=diffrax.Euler()),
                          ["`dt0` = None", "Euler", "give the step size `dt0` (> 0)"]),
    "controller as a class": (lambda: sj.Flow(1.0, stepsize_controller=diffrax.PIDController),
                              ["`stepsize_controller` = PIDController", "instance"]),
    "adaptive controller, Euler": (
        lambda: sj.Flow(1.0, solver=diffrax.Euler(),
                        stepsize_controller=diffrax.PIDController(rtol=1e-3, atol=1e-6)),
        ["`stepsize_controller` = PIDController", "Euler", "ConstantStepSize"]),
    "t1 and ts": (lambda: sj.Flow(1.0, ts=[0.0, 1.0]), ["`t1` = 1.0", "`ts`", "give one"]),
    "ts with NaN": (lambda: sj.Flow(ts=[0.0, np.nan]), ["`ts`", "nan", "increasing finite"]),
    "batch_size 0": (lambda: sj.Train(optax.sgd(0.1), 10, batch_size=0),
                     ["`batch_size`", "0", ">= 1"]),
    "batch_size larger than n": (
        lambda: sj.train(_ufm(), _objective(), optax.sgd(0.1), 2, batch_size=8,
                         key=jax.random.key(0)),
        ["`batch_size`", "8", "<= n = 7"]),
    "negative learning rate": (
        lambda: sj.train(_ufm(), _objective(), SGD, 2, hyperparameters={"learning_rate": -0.1}),
        ["`learning_rate`", "-0.1", "(0.0, inf]"]),
    "momentum 1": (
        lambda: sj.train(_ufm(), _objective(), optax.inject_hyperparams(optax.sgd), 2,
                         hyperparameters={"learning_rate": 0.1, "momentum": 1.0}),
        ["`momentum`", "1.0", "[0.0, 1.0)"]),
    "optimizer function without its settings": (
        lambda: sj.train(_ufm(), _objective(), SGD, 2),
        ["`hyperparameters` = {}", "learning_rate"]),
    "settings for a fixed optimizer": (
        lambda: sj.train(_ufm(), _objective(), optax.sgd(0.1), 2,
                         hyperparameters={"learning_rate": 0.1}),
        ["`hyperparameters`", "'learning_rate': 0.1", "inject_hyperparams"]),
    "settings for a flow": (
        lambda: sj.Flow(1.0)(_ufm(), _objective(), hyperparameters={"learning_rate": 0.1}),
        ["`hyperparameters`", "'learning_rate': 0.1", "takes none"]),
    "objective as a function": (
        lambda: sj.gradient_flow(_ufm(), lambda model: 0.0, t1=1.0),
        ["`objective`", "function", "AbstractObjective"]),
    "trajectory without class progress": (
        lambda: sj.gradient_flow(_ufm(), _objective(), t1=1.0, num_saves=3,
                                 metrics=_loss_only).learning_times(),
        ["`class_progress`", "['loss']"]),
    "trajectory level 1.5": (
        lambda: sj.gradient_flow(_ufm(), _objective(), t1=1.0, num_saves=3).learning_times(1.5),
        ["`level`", "1.5", "(0.0, 1.0)"]),
}


def _loss_only(model, objective):
    return {"loss": objective(model)}


CASES = {**CLOSED_FORMS, **METRICS, **MODELS, **OBJECTIVES, **DYNAMICS}


@pytest.mark.parametrize("name", list(CASES))
def test_refused_with_parameter_value_and_allowed(name):
    build, parts = CASES[name]
    _refused(build, *parts)


# Models whose outputs do not fit the objective: refused from shapes alone, before compute.
MISMATCHED = {
    "UFM of 12 examples, 10 labels": (
        lambda: (_ufm(np.array([4, 4, 4])),
                 sj.Objective(sj.labels_from_counts(np.array([4, 4, 2])), losses.square)),
        ["`model`", "12 examples", "10 labels"]),
    "UFM of 2 classes, 3 labels": (lambda: (_ufm(np.array([4, 3])), _objective()),
                                   ["`model`", "(7, 2)", "3 classes", "(n, 3)"]),
    "SSM of 5 columns, target of 7": (
        lambda: (sj.SSM((3, 5), 2, key=jax.random.key(0)), sj.TargetFit(sj.label_matrix(COUNTS))),
        ["`model`", "(5, 3)", "(3, 7)", "(7, 3)"]),
    "UFM on a margin loss": (
        lambda: (_ufm(np.array([1, 1])), sj.Objective(np.array([1, -1]), losses.logistic)),
        ["`model`", "(2, 2)", "(n,) or (n, 1)"]),
    "Linear of 3 features, inputs of 4": (
        lambda: (sj.Linear(3), sj.Objective(np.array([1, -1]), losses.logistic,
                                            inputs=np.ones((2, 4)))),
        ["`model`", "Linear", "(2, 4)"]),
}


@pytest.mark.parametrize("name", list(MISMATCHED))
@pytest.mark.parametrize("run", ["flow", "train"])
def test_mismatched_model_refused_before_compute(name, run):
    build, parts = MISMATCHED[name]
    model, objective = build()
    before = eqx.debug.get_num_traces(base.compiled_run)
    if run == "flow":
        _refused(lambda: sj.gradient_flow(model, objective, t1=1.0), *parts)
    else:
        _refused(lambda: sj.train(model, objective, optax.sgd(0.1), 2), *parts)
    assert eqx.debug.get_num_traces(base.compiled_run) == before  # nothing was compiled


def test_check_model_reads_abstract_values():
    """A sweep builds its members abstractly (`jax.eval_shape`); the check works there."""
    good = jax.eval_shape(lambda: (_ufm(), _objective()))
    good[1].check_model(good[0])
    model, objective = jax.eval_shape(lambda: (_ufm(np.array([4, 4, 4])), _objective()))
    _refused(lambda: objective.check_model(model), "12 examples", "7 labels")


def _digits_data(num_classes=2):
    rng = np.random.default_rng(0)
    labels = np.arange(6) % num_classes
    return NetworkData(rng.normal(size=(6, 8, 8)), labels, rng.normal(size=(4, 8, 8)),
                       np.arange(4) % num_classes, num_classes)


def test_network_of_other_class_count_refused():
    data = _digits_data(2)
    setting = sj.training_setting(data.y_train, 2)
    network = sj.MLP(3, 8, key=jax.random.key(0))
    _refused(lambda: sj.train_network(network, data, setting, 2, key=jax.random.key(0)),
             "`network`", "(6, 3)", "2 classes", "(6, 2)")


@pytest.mark.parametrize("build, parts", [
    (lambda: NetworkData(np.ones((6, 8, 8)), np.zeros(5, int), np.ones((4, 8, 8)),
                         np.zeros(4, int), 2), ["`x_train`", "(6, 8, 8)", "`y_train`", "(5,)"]),
    (lambda: NetworkData(np.ones((6, 8, 8)), np.zeros(6, int), np.ones((4, 7, 7)),
                         np.zeros(4, int), 2), ["`x_test`", "(7, 7)", "(8, 8)"]),
    (lambda: NetworkData(np.full((6, 8, 8), np.nan), np.zeros(6, int), np.ones((4, 8, 8)),
                         np.zeros(4, int), 2), ["`x_train`", "nan", "finite"]),
    (lambda: sj.training_setting(np.zeros(6, int), 2, learning_rate=0.0),
     ["`learning_rate`", "0.0", "(0.0, inf]"]),
])
def test_network_data_refused(build, parts):
    _refused(build, *parts)


def test_traced_values_pass():
    a0 = jax.jit(lambda a0: analytic.mode_strength(1.0, 2.0, a0, 10))(0.1)
    np.testing.assert_allclose(a0, analytic.mode_strength(1.0, 2.0, 0.1, 10))
    ts, progress = jnp.linspace(0.0, 1.0, 11), jnp.linspace(0.0, 1.0, 11)
    traced = jax.jit(lambda level: sj.learning_time(ts, progress, level))(0.25)
    assert float(traced) == pytest.approx(0.25)


def test_never_learned_is_nan_not_inf():
    """A class of weight 0 never reaches 1/2: its learning time is NaN ("did not happen")."""
    times = np.asarray(analytic.ufm_half_learning_time(COUNTS, np.array([1.0, 0.0, 1.0]), 0.01))
    assert np.isnan(times[1]) and np.all(np.isfinite(times[[0, 2]]))


def test_optimizer_settings_per_run_match_a_fixed_optimizer():
    model, objective = _ufm(), _objective()
    fixed = sj.train(model, objective, optax.sgd(0.1), 20, record_every=5)
    per_run = sj.train(model, objective, SGD, 20, record_every=5,
                       hyperparameters={"learning_rate": 0.1})
    np.testing.assert_allclose(per_run.metrics["loss"], fixed.metrics["loss"], rtol=1e-12)
