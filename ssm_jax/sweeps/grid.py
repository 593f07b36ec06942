"""The designs of a sweep: which settings its members take. A `Grid` is the Cartesian product
of named axes, enumerated in row-major order (the last axis varies fastest); `Points` (in
`points`) lists each member's settings directly. The sweep treats both alike through
`AbstractDesign`."""

import abc

import numpy as np


def check_axis(kind: str, name: str, values) -> np.ndarray:
    """One axis of a design checked: a non-empty 1-D sequence of finite numbers.

    **Arguments:**

    - `kind`: the design's name, for the message ("Grid", "Points").
    - `name`: the axis's name.
    - `values`: its values.

    **Returns:** the values as a NumPy array; integer axes (seeds) stay integers.
    """
    arr = np.asarray(list(values) if isinstance(values, range) else values)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{kind} axis `{name}` must be a non-empty 1-D sequence of "
                         f"numbers, got shape {arr.shape}.")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{kind} axis `{name}` must hold numbers, got dtype {arr.dtype}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{kind} axis `{name}` = {arr} is not allowed: values must be "
                         "finite.")
    return arr


class AbstractDesign(abc.ABC):
    """Named settings, one set per member of a sweep.

    **Attributes:** `axes`, {setting name: array}; `kind`, the name a store keeps to rebuild
    the design (`design_from_dict`).
    """

    kind: str
    axes: dict[str, np.ndarray]

    @property
    def names(self) -> tuple[str, ...]:
        """The settings' names, in order."""
        return tuple(self.axes)

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """The number of members."""

    @property
    @abc.abstractmethod
    def dims(self) -> tuple[str, ...]:
        """The dimensions of a sweep's dataset over the design."""

    @abc.abstractmethod
    def coordinates(self) -> dict[str, np.ndarray]:
        """Each setting's value at every member.

        **Returns:** {setting name: array of shape (size,)}, in member order.
        """

    def point(self, index: int) -> dict:
        """The settings of one member.

        **Arguments:**

        - `index`: a member index in 0..size-1.

        **Returns:** {setting name: value}, as Python numbers.
        """
        return {name: values[index].item() for name, values in self.coordinates().items()}

    def to_dict(self) -> dict[str, list]:
        """The axes as JSON values; `type(design)(**design.to_dict())` rebuilds the design.

        **Returns:** {setting name: list of values}.
        """
        return {name: values.tolist() for name, values in self.axes.items()}

    def __repr__(self):
        inner = ", ".join(f"{n}[{v.size}]" for n, v in self.axes.items())
        return f"{type(self).__name__}({inner})"


class Grid(AbstractDesign):
    """Named axes of numeric values, every combination one member, e.g.
    `Grid(ratio=[1, 10, 100], power=jnp.linspace(0, 1, 11), seed=range(8))`.

    **Arguments:** each keyword is an axis: a name and a non-empty 1-D sequence of distinct
    finite numbers. Integer axes (seeds) stay integers.
    """

    kind = "grid"

    def __init__(self, **axes):
        if not axes:
            raise ValueError("A Grid needs at least one axis, e.g. Grid(power=[0, 0.5, 1]).")
        self.axes = {}
        for name, values in axes.items():
            arr = check_axis("Grid", name, values)
            if np.unique(arr).size != arr.size:
                raise ValueError(f"Grid axis `{name}` = {arr} repeats a value: each grid point "
                                 "must be distinct.")
            self.axes[name] = arr

    @property
    def shape(self) -> tuple[int, ...]:
        """The number of values on each axis."""
        return tuple(v.size for v in self.axes.values())

    @property
    def size(self) -> int:
        """The number of grid points."""
        return int(np.prod(self.shape))

    @property
    def dims(self) -> tuple[str, ...]:
        """The axes' names: a grid's dataset is over its axes."""
        return self.names

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
