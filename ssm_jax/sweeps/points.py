"""A design of hand-picked, random or Latin-hypercube settings: member i takes the i-th entry
of every axis. A sweep's dataset over it has one dimension, `point`."""

import numpy as np

from .grid import AbstractDesign, Grid, check_axis


class Points(AbstractDesign):
    """Equal-length arrays of settings, one member per index, e.g.
    `Points(ratio=rng.uniform(1, 100, 512), power=rng.uniform(0, 1.5, 512),
    seed=np.arange(512))`.

    **Arguments:** each keyword is a setting: a name and a non-empty 1-D sequence of finite
    numbers, all of one length (values may repeat). Integer settings (seeds) stay integers.
    """

    kind = "points"

    def __init__(self, **axes):
        if not axes:
            raise ValueError("Points need at least one setting, e.g. "
                             "Points(ratio=[1.5, 7.0], power=[0.2, 0.9]).")
        self.axes = {name: check_axis("Points", name, values) for name, values in axes.items()}
        lengths = {name: v.size for name, v in self.axes.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"Points settings have lengths {lengths}: expected one length, "
                             "one entry per member.")

    @property
    def size(self) -> int:
        """The number of members."""
        return next(iter(self.axes.values())).size

    @property
    def dims(self) -> tuple[str, ...]:
        """("point",): the dataset is over the members, each setting a coordinate on it."""
        return ("point",)

    def coordinates(self) -> dict[str, np.ndarray]:
        """Each setting's value at every member.

        **Returns:** {setting name: array of shape (size,)}.
        """
        return dict(self.axes)


DESIGNS = {cls.kind: cls for cls in (Grid, Points)}
"""The designs a store can name, by their `kind`."""


def design_from_dict(kind: str, axes: dict) -> AbstractDesign:
    """The design a store describes, from its `kind` and `to_dict()`.

    **Arguments:**

    - `kind`: "grid" or "points".
    - `axes`: {setting name: list of values}.

    **Returns:** the `Grid` or `Points`.
    """
    if kind not in DESIGNS:
        raise ValueError(f"`kind` = {kind!r} is not allowed: expected one of "
                         f"{', '.join(map(repr, DESIGNS))}.")
    return DESIGNS[kind](**axes)
