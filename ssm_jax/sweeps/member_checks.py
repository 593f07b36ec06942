"""Checking a sweep's members one by one before any compute: each built abstractly
(`equinox.filter_eval_shape`) with every check of a single run, and all found to stack into
one batch once padded. A vectorized sweep checks its design's arrays instead
(`vectorized.check_vectorized`).
"""

from collections.abc import Sequence

import equinox as eqx
import jax
import numpy as np

from .padding import pad_problem
from .plan import padded_size
from .problem import AbstractProblem
from .vectorized import Members, build_member


def _signature(problem) -> tuple:
    """What members must share to stack: the structure, and each leaf's shape and dtype (an
    array) or value (anything else)."""
    leaves, structure = jax.tree_util.tree_flatten(problem)
    return structure, tuple((leaf.shape, leaf.dtype) if isinstance(leaf, jax.ShapeDtypeStruct)
                            else leaf for leaf in leaves)


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except ValueError:  # arrays among the settings: `_stack` compares them when it runs
        return True


def _difference(a: tuple, b: tuple) -> str:
    """The first difference of two signatures, in words."""
    if not _same(a[0], b[0]) or len(a[1]) != len(b[1]):
        return "its parts differ"
    for x, y in zip(a[1], b[1], strict=True):
        if not _same(x, y):
            if isinstance(x, tuple) and isinstance(y, tuple):
                return f"an array of shape {x[0]} where the other has {y[0]}"
            return f"{x!r} where the other has {y!r}"
    return "its parts differ"


def check_members(problem: AbstractProblem, points: Sequence[dict], dynamics, metrics,
                  pad_to: int | None = None) -> Members:
    """Builds every member abstractly (`equinox.filter_eval_shape`, no compute) and runs all
    the checks of a single run before any compute: the constructors' checks, that each model
    fits its objective, `dynamics.check` with the member's hyperparameters, and that all
    members stack into one batch once padded (the same structure and shapes).

    **Arguments:**

    - `problem`: an `AbstractProblem`, point settings -> (model, objective[,
      hyperparameters]).
    - `points`: the grid's points, as keywords.
    - `dynamics`: the sweep's dynamics.
    - `metrics`: (model, objective) -> dict of arrays, what each member records.
    - `pad_to`: the wanted common number of examples, or None for the largest.

    **Returns:** `Members` (with each member's number of examples). Raises `ValueError`
    naming the grid point at fault.
    """
    def build(point, size=None):
        try:
            member = eqx.filter_eval_shape(lambda: build_member(problem, point, None, dynamics))
            return member if size is None else eqx.filter_eval_shape(pad_problem, member, size)
        except (ValueError, TypeError) as error:
            raise ValueError(f"Grid point {point}: {error}") from error

    # Members with as many examples as a first one must match it; the first of each size
    # must match the very first once both are padded.
    firsts: dict[int, tuple[int, tuple]] = {}
    sizes = np.empty(len(points), dtype=np.int64)
    for index, point in enumerate(points):
        member = build(point)
        size = sizes[index] = int(member[1].labels.shape[0])
        signature = _signature(member)
        first, expected = firsts.setdefault(size, (index, signature))
        if not _same(signature, expected):
            _refuse_structure(points, index, first, _difference(signature, expected))
    pad_to = padded_size(list(firsts), pad_to)
    padded = {index: _signature(build(points[index], pad_to)) for index, _ in firsts.values()}
    reference = min(padded)
    for index, signature in padded.items():
        if not _same(signature, padded[reference]):
            _refuse_structure(points, index, reference,
                              _difference(signature, padded[reference]))
    model, objective, _ = build(points[reference], pad_to)
    # Metrics are recorded on the objective at each record time (weights may change with time).
    at_start = eqx.filter_eval_shape(lambda o: o.at(dynamics.record_times()[0]), objective)
    return Members(pad_to, eqx.filter_eval_shape(metrics, model, at_start), sizes)


def _refuse_structure(points, index: int, other: int, difference: str):
    raise ValueError(f"`make_problem` built a problem at grid point {points[index]} that cannot "
                     f"share a batch with the one at {points[other]} ({difference}): members "
                     "of a sweep may differ only in array values and in their number of "
                     "examples (which is padded), not in shapes or other settings.")
