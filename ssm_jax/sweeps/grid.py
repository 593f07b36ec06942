"""A Cartesian grid of settings for a sweep: named axes of numbers, enumerated in row-major
order (the last axis varies fastest)."""

import numpy as np


class Grid:
    """Named axes of numeric values, e.g.
    `Grid(ratio=[1, 10, 100], power=jnp.linspace(0, 1, 11), seed=range(8))`.

    **Arguments:** each keyword is an axis: a name and a non-empty 1-D sequence of finite
    numbers. Integer axes (seeds) stay integers.
    """

    def __init__(self, **axes):
        if not axes:
            raise ValueError("A Grid needs at least one axis, e.g. Grid(power=[0, 0.5, 1]).")
        self.axes: dict[str, np.ndarray] = {}
        for name, values in axes.items():
            arr = np.asarray(list(values) if isinstance(values, range) else values)
            if arr.ndim != 1 or arr.size == 0:
                raise ValueError(f"Grid axis `{name}` must be a non-empty 1-D sequence of "
                                 f"numbers, got shape {arr.shape}.")
            if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
                raise ValueError(f"Grid axis `{name}` must hold numbers, got dtype {arr.dtype}.")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"Grid axis `{name}` = {arr} is not allowed: values must be "
                                 "finite.")
            if np.unique(arr).size != arr.size:
                raise ValueError(f"Grid axis `{name}` = {arr} repeats a value: each grid point "
                                 "must be distinct.")
            self.axes[name] = arr

    @property
    def names(self) -> tuple[str, ...]:
        """The axes' names, in order."""
        return tuple(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        """The number of values on each axis."""
        return tuple(v.size for v in self.axes.values())

    @property
    def size(self) -> int:
        """The number of grid points."""
        return int(np.prod(self.shape))

    def point(self, index: int) -> dict:
        """The settings at one grid point.

        **Arguments:**

        - `index`: a flat index in 0..size-1 (row-major).

        **Returns:** {axis name: value}, as Python numbers.
        """
        position = np.unravel_index(index, self.shape)
        return {name: values[i].item() for (name, values), i in
                zip(self.axes.items(), position, strict=True)}

    def coordinates(self) -> dict[str, np.ndarray]:
        """Each axis's value at every grid point.

        **Returns:** {axis name: array of shape (size,)}, in flat-index order.
        """
        mesh = np.meshgrid(*self.axes.values(), indexing="ij")
        return {name: m.ravel() for name, m in zip(self.axes, mesh, strict=True)}

    def to_dict(self) -> dict[str, list]:
        """The axes as JSON values; `Grid(**grid.to_dict())` rebuilds the grid.

        **Returns:** {axis name: list of values}.
        """
        return {name: values.tolist() for name, values in self.axes.items()}

    def __repr__(self):
        inner = ", ".join(f"{n}[{v.size}]" for n, v in self.axes.items())
        return f"Grid({inner})"
