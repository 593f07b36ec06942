"""Other coordinates with their state raveled into one vector, so that a solver's stage sums,
error norm and selects act on one array per member (and on one (L, n) array for L lanes)
rather than on each leaf of the state."""

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .coordinates import AbstractCoordinates

SMALL_STATE = 4096
"""The most numbers a raveled state holds: in a small state a kernel per leaf costs more
than its arithmetic, in a large one the copy that ravels each evaluation's output costs
more than the kernels it saves (W1 in class-affine coordinates, 10 x 32 x 32: 0.92x)."""


class Raveled(AbstractCoordinates):
    """`inner`'s state as one vector: the same flow, its state's leaves laid end to end (one
    dtype, so that nothing is rounded). Built by `raveled`, from one member's state.

    Values are `inner`'s exactly: the field is `inner`'s field, raveled; under a max error norm
    a solver takes the same steps."""

    inner: AbstractCoordinates
    treedef: Any = eqx.field(static=True)
    shapes: tuple = eqx.field(static=True)
    name: ClassVar[str] = "raveled"

    def ravel(self, tree):
        """`tree` (a state of `inner`) as one vector."""
        return jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(tree)])

    def unravel(self, y):
        """The state of `inner` that vector `y` holds."""
        ends = np.cumsum([int(np.prod(s)) for s in self.shapes])
        leaves = [y[end - int(np.prod(s)):end].reshape(s) for s, end in zip(self.shapes, ends,
                                                                             strict=True)]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)

    def check(self, objective):
        self.inner.check(objective)

    def of(self, params, static, objective):
        return self.inner.of(params, static, objective)

    def state(self, frame, params):
        return self.ravel(self.inner.state(frame, params))

    def field(self, frame, t, y, objective, static):
        return self.ravel(self.inner.field(frame, t, self.unravel(y), objective, static))

    def model(self, frame, y, static):
        return self.inner.model(frame, self.unravel(y), static)

    def params(self, frame, y, static):
        return self.inner.params(frame, self.unravel(y), static)


def raveled(coordinates: AbstractCoordinates, state) -> AbstractCoordinates:
    """`coordinates` with their state raveled, where that rounds nothing.

    **Arguments:**

    - `coordinates`: the flow's coordinates.
    - `state`: one member's state in them (arrays or shapes, as `jax.eval_shape` gives).

    **Returns:** `Raveled(coordinates, ...)` where the state's leaves share one floating
    dtype and hold at most `SMALL_STATE` numbers; otherwise `coordinates` as they are.
    """
    leaves, treedef = jax.tree_util.tree_flatten(state)
    dtypes = {jnp.dtype(x.dtype) for x in leaves}
    if (len(dtypes) != 1 or not jnp.issubdtype(dtypes.pop(), jnp.floating)
            or sum(int(np.prod(x.shape)) for x in leaves) > SMALL_STATE):
        return coordinates
    return Raveled(coordinates, treedef, tuple(tuple(x.shape) for x in leaves))
