"""Everything about a sweep's design found before any compute: each member checked (one by one
in Python, or from the design's arrays when vectorized), its number of examples, its cost key,
its predictions and its class groups."""

from collections.abc import Callable
import math
from typing import NamedTuple

import numpy as np

from .dataset import ClassGroups, grid_class_groups, grid_predictions
from .grid import AbstractDesign
from .member_checks import check_members
from .problem import AbstractProblem
from .vectorized import Members, check_vectorized


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
                 predict: Callable | None, class_groups) -> CheckedDesign:
    """Checks every member of `design` and gathers what the plan and the dataset need.

    **Arguments:**

    - `problem`: the sweep's `AbstractProblem`.
    - `design`: its `AbstractDesign`.
    - `dynamics`, `metrics`: as for `sweep`.
    - `vectorized`, `pad_to`, `order_by`, `predict`, `class_groups`: as for `sweep`; without
      `order_by` the problem's `cost` orders the members, and without `predict` its `predict`
      gives the predictions.

    **Returns:** a `CheckedDesign`. Raises `ValueError` naming the argument or the member.
    """
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
    return CheckedDesign(points, members, keys, predictions, groups)


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
