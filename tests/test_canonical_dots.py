"""Products with their operands reordered: the same values as the function, every small
product in (batch, free, contracted) x (batch, contracted, free) order, inside called
jaxprs too, and large ones left as they are."""

import jax
import jax.numpy as jnp
import numpy as np

from ssm_jax.dynamics.canonical_dots import SMALL, canonical_dots


def _gradient(W, H, T):
    """A gradient with products along every pair of axes, through a jit and a custom_jvp."""
    loss = lambda W, H: jnp.sum(jax.nn.softplus(jax.jit(jnp.matmul)(W, H) - T))  # noqa: E731
    return jax.grad(loss, argnums=(0, 1))(W, H)


def _dots(fn, *args):
    """The dimension numbers of every product of `fn`, in called jaxprs too."""

    def dots(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                yield eqn.params["dimension_numbers"]
            for param in eqn.params.values():
                inner = getattr(param, "jaxpr", param)
                if hasattr(inner, "eqns"):
                    yield from dots(inner)

    return list(dots(jax.make_jaxpr(fn)(*args).jaxpr))


def test_reordered_products_give_the_same_values_in_one_order():
    rng = np.random.default_rng(0)
    W, H, T = (jnp.asarray(rng.normal(size=s)) for s in ((5, 3, 4), (5, 4, 3), (5, 3, 3)))
    batched = jax.vmap(_gradient)
    for ours, theirs in zip(jax.vmap(canonical_dots(_gradient))(W, H, T), batched(W, H, T),
                            strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-13)
    dots = _dots(jax.vmap(canonical_dots(_gradient)), W, H, T)
    assert len(dots) == 3
    assert all(contract == ((2,), (1,)) and batch == ((0,), (0,)) for contract, batch in dots)
    assert any(contract != ((2,), (1,)) for contract, _ in _dots(batched, W, H, T))


def test_large_products_keep_their_order():
    W, H = jnp.ones((2, SMALL)), jnp.ones((SMALL, 2))
    fn = lambda W, H: jax.grad(lambda W: jnp.sum(W @ H))(W)  # noqa: E731
    assert _dots(canonical_dots(fn), W, H) == _dots(fn, W, H)
    np.testing.assert_array_equal(canonical_dots(fn)(W, H), fn(W, H))
