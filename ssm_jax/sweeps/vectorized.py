"""Building a sweep's members: one by one in Python, or all of a chunk at once, tracing the
problem once under `vmap` over the design's arrays (no per-member Python).

A vectorized build needs a problem traceable in every setting a design varies (e.g.
`problems.imbalance_problem`); where its number of examples depends on a setting, it builds
with `pad_to` examples. Its settings are checked on the design's arrays before anything is
traced (the problem's `check_settings`, e.g. with `check_ranges`), its shapes by one abstract
evaluation (`check_vectorized`).
"""

from collections.abc import Callable, Mapping
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..objective import AbstractObjective
from .padding import pad_problem
from .problem import AbstractProblem


def problem_parts(result):
    """(model, objective, hyperparameters as given) from what `make_problem` returned.

    **Arguments:**

    - `result`: (model, objective) or (model, objective, hyperparameters).

    **Returns:** (model, objective, hyperparameters), {} where none were given.
    """
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
        raise ValueError(f"`make_problem` returned a {type(result).__name__}: expected "
                         "(model, objective) or (model, objective, hyperparameters).")
    model, objective, *rest = result
    hyper = rest[0] if rest else {}
    if not isinstance(objective, AbstractObjective):
        raise ValueError(f"`make_problem` returned an objective of type "
                         f"{type(objective).__name__}: expected an AbstractObjective such as "
                         "ssm_jax.Objective or ssm_jax.TargetFit.")
    if not isinstance(hyper, dict):
        raise ValueError(f"`make_problem` returned hyperparameters {hyper!r}: expected a dict "
                         "such as {'learning_rate': 0.1}.")
    return model, objective, hyper


def as_member(result):
    """`problem_parts` with the hyperparameters as arrays.

    **Arguments:**

    - `result`: what a problem returned for one member.

    **Returns:** (model, objective, hyperparameters as arrays).
    """
    model, objective, hyper = problem_parts(result)
    return model, objective, {k: jnp.asarray(v) for k, v in hyper.items()}


def member_keys(seed: int, members) -> jax.Array:
    """Member i's key fold_in(key(seed), i), whatever the chunking.

    **Arguments:**

    - `seed`: the sweep's seed.
    - `members`: design indices.

    **Returns:** one key per member.
    """
    base_key = jax.random.key(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base_key, i))(jnp.asarray(members))


def build_member(problem: AbstractProblem, point: dict, pad_to: int | None, dynamics=None):
    """One member from its (possibly traced) settings.

    **Arguments:**

    - `problem`: an `AbstractProblem`.
    - `point`: the member's settings, as keywords.
    - `pad_to`: its number of examples after padding, or None for unpadded.
    - `dynamics`: if given, every check of a single run: the model fits the objective, and
      `dynamics.check` with the hyperparameters as given (a negative learning rate is seen
      even under `eval_shape`).

    **Returns:** (model, objective, hyperparameters as arrays).
    """
    built = problem(**point) if pad_to is None else problem(pad_to=pad_to, **point)
    model, objective, hyper = problem_parts(built)
    if dynamics is not None:
        objective.check_model(model)
        dynamics.check(objective, hyper)
    problem = model, objective, {k: jnp.asarray(v) for k, v in hyper.items()}
    return problem if pad_to is None else pad_problem(problem, pad_to)


@eqx.filter_jit
def _build(problem, settings, pad_to):
    def one(point):
        model, objective, hyper = build_member(problem, point, pad_to)
        params, model_static = eqx.partition(model, eqx.is_inexact_array)
        arrays, objective_static = eqx.partition(objective, eqx.is_array)
        return (params, arrays, hyper), (model_static, objective_static)

    return eqx.filter_vmap(one)(settings)


def build_batch(problem: AbstractProblem, settings: Mapping[str, np.ndarray], members,
                pad_to: int | None, *, seed: int = 0):
    """A chunk's members built and stacked by one compiled `vmap` of the problem over their
    settings: what `ChunkRunner.batch` returns, without per-member Python.

    **Arguments:**

    - `problem`: an `AbstractProblem`, traceable in every setting of `settings`.
    - `settings`: {setting name: one value per member of the chunk}.
    - `members`: the chunk's design indices (for the keys).
    - `pad_to`: the static number of examples of every member, or None where all members
      have one shape already.
    - `seed`: member i draws with key fold_in(key(seed), i).

    **Returns:** ((parameters, objective arrays, hyperparameters, keys), static parts), every
    array with the members along its leading axis.
    """
    arrays = {name: jnp.asarray(values) for name, values in settings.items()}
    (params, objectives, hyper), static = _build(problem, arrays, pad_to)
    return (params, objectives, hyper, member_keys(seed, members)), static


def _in_range(values: np.ndarray, low=None, high=None, low_open=False, high_open=False,
              integer=False) -> tuple[np.ndarray, str]:
    """Which values are allowed, and what is allowed in words."""
    if integer:
        ok = np.full(values.shape, np.issubdtype(values.dtype, np.integer))
        return ok, "expected integers"
    ok = np.isfinite(values)
    if low is not None:
        ok &= values > low if low_open else values >= low
    if high is not None:
        ok &= values < high if high_open else values <= high
    lo, hi = "(" if low_open else "[", ")" if high_open else "]"
    return ok, (f"expected finite values in {lo}{'-inf' if low is None else low}, "
                f"{'inf' if high is None else high}{hi}")


def check_ranges(settings: Mapping[str, np.ndarray], ranges: Mapping[str, dict]) -> None:
    """Checks a design's arrays against allowed ranges, all members at once.

    **Arguments:**

    - `settings`: {setting name: one value per member}.
    - `ranges`: {setting name: keywords `low`, `high`, `low_open`, `high_open` (an interval
      of finite numbers) or `integer=True`}; settings without a range are only checked to
      be numbers.

    **Returns:** nothing. Raises `ValueError` naming the setting, the first offending value
    and its member's index.
    """
    for name, values in settings.items():
        values = np.atleast_1d(np.asarray(values))
        if not (np.issubdtype(values.dtype, np.integer)
                or np.issubdtype(values.dtype, np.floating)):
            raise ValueError(f"`{name}` must hold numbers, got dtype {values.dtype}.")
        ok, allowed = _in_range(values, **ranges.get(name, {}))
        bad = np.flatnonzero(~ok)
        if bad.size:
            raise ValueError(f"`{name}` = {values[bad[0]]} at point {bad[0]} is not allowed: "
                             f"{allowed}.")


class Members(NamedTuple):
    """What the checks of a sweep's members found (`member_checks.check_members`,
    `check_vectorized`)."""

    pad_to: int
    """The common number of examples that every member is padded to (the largest)."""
    metric_shapes: dict
    """The abstract metrics one member records per record time."""
    num_examples: np.ndarray
    """Each member's own number of examples, in design order (for size buckets)."""


def check_vectorized(problem: AbstractProblem, settings: Mapping[str, np.ndarray], dynamics,
                     metrics: Callable, pad_to: int | None = None) -> Members:
    """The checks of a vectorized sweep, before any compute: the problem's own check of the
    design's arrays, then one abstract evaluation (`equinox.filter_eval_shape`) of the member
    that `build_batch` vmaps, with the constructors' checks, that the model fits its objective
    and `dynamics.check`.

    **Arguments:**

    - `problem`: an `AbstractProblem`, as for `build_batch`; its `num_examples` gives
      `pad_to` and the size buckets where it knows them.
    - `settings`: {setting name: one value per member}, the whole design.
    - `dynamics`: the sweep's dynamics.
    - `metrics`: (model, objective) -> dict of arrays, what each member records.
    - `pad_to`: the static number of examples, or None for the largest of the problem's
      `num_examples` (or the one shape every member has, where it knows none).

    **Returns:** `Members`. Raises `ValueError` naming the setting or the failed check.
    """
    problem.check_settings(settings)
    num_examples = problem.num_examples(settings)
    size = len(next(iter(settings.values())))
    sizes = None if num_examples is None else np.broadcast_to(
        np.asarray(num_examples, dtype=np.int64), (size,))
    if sizes is not None:
        largest = int(sizes.max())
        if pad_to is not None and pad_to < largest:
            raise ValueError(f"`pad_to` = {pad_to} is not allowed: expected at least "
                             f"{largest}, the largest member's number of examples.")
        pad_to = largest if pad_to is None else pad_to
    point = {name: jax.ShapeDtypeStruct((), jnp.asarray(np.asarray(values)[:1]).dtype)
             for name, values in settings.items()}

    def checked(point):
        model, objective, hyper = build_member(problem, point, pad_to, dynamics)
        at_start = objective.at(dynamics.record_times()[0])
        return objective.labels.shape[0], metrics(model, at_start)

    try:
        built, shapes = eqx.filter_eval_shape(checked, point)
    except (ValueError, TypeError) as error:
        raise ValueError(f"`make_problem` traced over the settings "
                         f"{', '.join(settings)}: {error}") from error
    if sizes is None:
        sizes = np.full(size, built, dtype=np.int64)
    return Members(int(built), shapes, sizes)
