"""Everything about a sweep's design found before any compute: each member checked (one by one
in Python, or from the design's arrays when vectorized), its number of examples, its cost key,
its predictions and its class groups."""

from collections.abc import Callable
import math
import os
from typing import NamedTuple
import warnings

import jax
import numpy as np

from .dataset import ClassGroups, grid_class_groups, grid_predictions
from .execute import readable_bytes
from .grid import AbstractDesign
from .member_checks import check_members
from .problem import AbstractProblem
from .vectorized import Members, check_vectorized

PYTHON_BUILDS = 100_000
"""Designs larger than this, built one by one in Python, are warned about before compute."""


class CheckedDesign(NamedTuple):
    """A design, checked member by member before any compute."""

    points: list[dict] | dict[str, np.ndarray]
    """The members' settings: one dict per member, or, vectorized, {setting: one value per
    member}."""
    members: Members
    """The common padding, the recorded metrics' shapes and each member's number of
    examples."""
    keys: np.ndarray | None
    """One cost key per member, or None for the design's order."""
    predictions: dict[str, np.ndarray]
    """{name: one value per member}."""
    groups: ClassGroups | None
    """Each member's class groups, or None."""


def check_design(problem: AbstractProblem, design: AbstractDesign, dynamics, metrics, *,
                 vectorized: bool, pad_to: int | None, order_by: Callable | None,
                 predict: Callable | None, class_groups,
                 in_memory: bool = False) -> CheckedDesign:
    """Checks every member of `design` and gathers what the plan and the dataset need.

    **Arguments:**

    - `problem`: the sweep's `AbstractProblem`.
    - `design`: its `AbstractDesign`.
    - `dynamics`, `metrics`: as for `sweep`.
    - `vectorized`, `pad_to`, `order_by`, `predict`, `class_groups`: as for `sweep`; without
      `order_by` the problem's `cost` orders the members, and without `predict` its `predict`
      gives the predictions.
    - `in_memory`: whether every member's records are to be held in memory (no store): a
      design whose records do not fit is refused.

    **Returns:** a `CheckedDesign`. Raises `ValueError` naming the argument or the member; warns
    where more than `PYTHON_BUILDS` members are to be built one by one.
    """
    if not vectorized and design.size > PYTHON_BUILDS:
        warnings.warn(f"{design.size} members are built and checked one by one in Python "
                      "before any compute (about a millisecond each): vectorized=True builds "
                      "and checks them from the design's arrays.", stacklevel=3)
    arrays = design.coordinates()
    if vectorized:
        points = arrays
        members = check_vectorized(problem, points, dynamics, metrics, pad_to)
        member_points = [design.point(i) for i in range(design.size)] if callable(
            class_groups) else []
        keys = None if order_by is None else _vector_keys(order_by, points, design.size)
        predictions = grid_predictions(predict, points, vectorized=True)
    else:
        points = member_points = [design.point(i) for i in range(design.size)]
        members = check_members(problem, points, dynamics, metrics, pad_to)
        keys = None if order_by is None else _order_keys(order_by, points)
        predictions = grid_predictions(predict, points)
    if order_by is None:
        cost = problem.cost(arrays, dynamics)
        keys = None if cost is None else _vector_keys(lambda **_: cost, arrays, design.size)
    if predict is None:
        predicted = problem.predict(arrays)
        if predicted is not None:
            predictions = grid_predictions(lambda **_: predicted, arrays, vectorized=True)
    groups = grid_class_groups(class_groups, member_points,
                               _num_classes(members.metric_shapes, class_groups))
    if in_memory:
        _check_results_fit(members.metric_shapes, dynamics, design.size)
    return CheckedDesign(points, members, keys, predictions, groups)


def _check_results_fit(metric_shapes, dynamics, size: int) -> None:
    """Refuses a sweep without a store whose records cannot all be held in memory."""
    values = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(metric_shapes))
    needed = 8 * size * dynamics.record_times().size * values
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if needed > available // 2:
        raise ValueError(f"The results of {size} members ({readable_bytes(needed)} of records) "
                         f"do not fit in memory ({readable_bytes(available)} available): give "
                         "a `store`, which keeps each chunk on disk as it ends, or record "
                         "fewer times or metrics.")


def _num_classes(metric_shapes: dict, class_groups) -> int:
    """k of the members' per-class metrics, which `class_groups` group."""
    per_class = [v for name, v in metric_shapes.items() if name.startswith("class_")]
    if class_groups is not None and not per_class:
        raise ValueError(f"`class_groups` = {class_groups!r} is not allowed: the members record "
                         f"no per-class metric (only {', '.join(sorted(metric_shapes))}); "
                         "expected None.")
    return int(per_class[0].shape[-1]) if per_class else 0


def _order_keys(order_by: Callable, points: list[dict]) -> list[float]:
    keys = []
    for point in points:
        key = order_by(**point)
        try:
            value = float(key)
        except (TypeError, ValueError):
            value = math.nan
        if math.isnan(value):
            raise ValueError(f"`order_by` at grid point {point} returned {key!r}: expected a "
                             "number (a cost; members run in increasing order).")
        keys.append(value)
    return keys


def _vector_keys(order_by: Callable, settings: dict, size: int) -> np.ndarray:
    """`order_by` called once on every member's settings (a vectorized sweep)."""
    keys = order_by(**settings)
    try:
        values = np.broadcast_to(np.asarray(keys, dtype=float), (size,))
    except (TypeError, ValueError):
        values = None
    if values is None or np.isnan(values).any():
        raise ValueError(f"`order_by` returned {keys!r} for the design's arrays: expected one "
                         f"number per member ({size}; a cost, members run in increasing "
                         "order), none NaN.")
    return values
