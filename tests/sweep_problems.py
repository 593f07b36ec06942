"""Small sweep problems shared by the sweep tests and the processes they start."""

import jax
import optax

import ssm_jax as sj

# The same precision in every process that runs these problems.
jax.config.update("jax_enable_x64", True)

GROUPS = {"majority": [0, 1], "minority": [2, 3]}


def ufm_problem(ratio, power, init_scale, seed):
    spec = sj.StepImbalance(4, ratio, 2)
    model = sj.UFM(spec.counts, 6, init_scale=init_scale, key=jax.random.key(seed))
    objective = sj.Objective(spec.labels, sj.losses.square,
                             class_weights=sj.class_weights(spec.counts, power))
    return model, objective


def ssm_problem(ratio, power, seed):
    spec = sj.StepImbalance(4, ratio, 2)
    target = sj.label_matrix(spec.counts, sj.class_weights(spec.counts, power))
    return sj.SSM(target.shape, 6, init_scale=1e-2, key=jax.random.key(seed)), sj.TargetFit(target)


def lr_problem(learning_rate):
    model, objective = ufm_problem(4.0, 0.5, 0.1, 0)
    return model, objective, {"learning_rate": learning_rate}


SGD = optax.inject_hyperparams(optax.sgd)


def predict(ratio, power, **_):
    """A closed form of the members' settings, recorded with the sweep."""
    return {"predicted_ratio": ratio ** -power}


def grid():
    return sj.Grid(ratio=[1.0, 3.0, 8.0], power=[0.0, 1.0], init_scale=[1e-2], seed=[0, 1])


def run(**kwargs):
    return sj.sweep(ufm_problem, grid(), t1=300.0, num_saves=12, class_groups=GROUPS, **kwargs)


def tiny_config(model: str = "ufm", ratio=(1, 4), power=(0.0, 1.0), seeds: int = 2) -> str:
    """A sweep configuration (TOML) small enough for a test: k = 4 classes, width 4."""
    return f"""
[problem]
model = "{model}"
num_classes = 4
minority_size = 2
dim = 4
init_scale = 1e-2

[grid]
ratio = {list(ratio)}
power = {list(power)}
seed = {{ range = {seeds} }}

[flow]
t1 = 300.0
num_saves = 20
"""
