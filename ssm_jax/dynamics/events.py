"""Events that end a gradient flow early, as array-leaf modules (a sweep over their
thresholds compiles once): at rest where the objective is smooth (`SteadyState`), and at a
rest point on kinks of a ReLU network (`SampledSteadyState`)."""

import abc

import equinox as eqx
import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from .. import _validate


class AbstractEvent(eqx.Module):
    """A condition that ends a flow. A new event provides `__call__(field, t, params,
    objective) -> bool`, where `field(t, params, objective)` is the flow's velocity -grad L."""

    @abc.abstractmethod
    def __call__(self, field, t, params, objective) -> Bool[Array, ""]:
        """True once the flow should stop."""


def _norm(tree):
    return jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(tree)))


class SteadyState(AbstractEvent):
    """The flow is at rest once |grad L| <= tol * lambda, lambda the objective's L2 strength.

    For a lambda-strongly convex objective (L2 on a convex loss) this bounds the distance to
    the minimizer by `tol`. Without L2 (lambda = 0) a separable problem has no finite rest,
    and the event never fires.

    **Arguments:**

    - `tol`: the bound on the distance to the minimizer (> 0).
    """

    tol: Float[Array, ""]

    def __init__(self, tol):
        _validate.number("tol", tol, low=0.0, low_open=True)
        self.tol = jnp.asarray(tol, dtype=jnp.result_type(float))

    def __call__(self, field, t, params, objective):
        l2 = objective.l2
        return (l2 > 0) & (_norm(field(t, params, objective)) <= self.tol * l2)


def _least_norm_in_hull(G, iterations=200):
    """min |mu^T G| over the probability simplex (Wolfe's least-norm point), by Frank-Wolfe
    with exact line search on the Gram matrix; G is (K, d), K small."""
    gram = G @ G.T
    mu = jnp.zeros(G.shape[0], G.dtype).at[0].set(1.0)

    def step(_, mu):
        direction = jax.nn.one_hot(jnp.argmin(gram @ mu), mu.size, dtype=mu.dtype) - mu
        curvature = direction @ gram @ direction
        length = -(mu @ gram @ direction) / jnp.where(curvature > 0, curvature, 1.0)
        return mu + jnp.clip(length, 0.0, 1.0) * direction

    mu = jax.lax.fori_loop(0, iterations, step, mu)
    return jnp.sqrt(jnp.maximum(mu @ gram @ mu, 0.0))


class SampledSteadyState(AbstractEvent):
    """At rest once 0 lies within tol * lambda of the convex hull of the gradients sampled
    along a short explicit-Euler probe from the state (a sampled Goldstein subgradient).

    At a rest point on ReLU kinks (a hidden unit's hyperplane through a data point) the
    gradient jumps, and |grad L| stays of order lambda on every side: `SteadyState` never
    fires there, while the probe crosses the kinks and its gradients' hull holds 0. At a smooth
    point the probe's gradients all lie close to grad L, and the test is `SteadyState`'s.

    **Arguments:**

    - `tol`: the bound, relative to lambda (> 0).
    - `radius`: the length of each probe step, relative to |theta| (> 0).
    - `samples`: the number of gradients sampled (>= 2), the first at the state.
    """

    tol: Float[Array, ""]
    radius: Float[Array, ""]
    samples: int = eqx.field(static=True)

    def __init__(self, tol, radius=1e-3, samples: int = 8):
        _validate.number("tol", tol, low=0.0, low_open=True)
        _validate.number("radius", radius, low=0.0, low_open=True)
        self.tol = jnp.asarray(tol, dtype=jnp.result_type(float))
        self.radius = jnp.asarray(radius, dtype=jnp.result_type(float))
        self.samples = _validate.integer("samples", samples, minimum=2)

    def __call__(self, field, t, params, objective):
        theta, unflatten = ravel_pytree(params)
        velocity = lambda x: ravel_pytree(field(t, unflatten(x), objective))[0]  # noqa: E731
        v0 = velocity(theta)
        h = self.radius * jnp.linalg.norm(theta) / jnp.maximum(jnp.linalg.norm(v0),
                                                               jnp.finfo(v0.dtype).tiny)

        def probe(carry, _):
            x, v = carry
            x = x + h * v
            v = velocity(x)
            return (x, v), v

        _, later = jax.lax.scan(probe, (theta, v0), None, length=self.samples - 1)
        hull = _least_norm_in_hull(jnp.concatenate([v0[None], later]))
        l2 = objective.l2
        return (l2 > 0) & (hull <= self.tol * l2)
