"""A function whose matrix products all take their operands in one order: (batch, free,
contracted) by (batch, contracted, free).

A gradient's products contract operands along any axes (W^T R contracts W's first). XLA:CPU
hands a batched product in that order to its fast small-matrix kernels, but folds a
transpose of an operand back into the product's dimension numbers and then runs a slower
generic loop: a batch of 16 (10 x 16) by (16 x 10) products takes ~3x longer. Here each
product whose operands are out of order gets them transposed and materialized (behind an
optimization barrier, so that XLA cannot fold the transpose back); the values are the same
products', up to the order of the sums."""

import equinox as eqx
import jax
from jax import lax
import jax.extend as jex

SMALL = 4096
"""The most elements an operand of a reordered product holds (per member, before `vmap`):
a small product's cost is the kernel's, a large operand's transposed copy costs more than
the generic loop loses (W1's 32 x 5050 features: 0.65x)."""

_CALLS = {"pjit": "jaxpr", "jit": "jaxpr", "closed_call": "call_jaxpr",
          "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr"}
"""Primitives that call a jaxpr, which is inlined so that its products are reordered too
(the function is only evaluated, never differentiated, after the rewrite)."""


def _ordered_dot(lhs, rhs, dimension_numbers, **params):
    """`lax.dot_general` with its operands first transposed into (batch, free, contracted)
    and (batch, contracted, free), where both are `SMALL`; the output's axes are the same
    (batch, lhs free, rhs free)."""
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers

    def order(ndim, batch, contract, contract_last):
        free = [i for i in range(ndim) if i not in batch and i not in contract]
        return (*batch, *free, *contract) if contract_last else (*batch, *contract, *free)

    if max(lhs.size, rhs.size) > SMALL:
        return lax.dot_general_p.bind(lhs, rhs, dimension_numbers=dimension_numbers, **params)
    lhs_order = order(lhs.ndim, lhs_batch, lhs_contract, True)
    rhs_order = order(rhs.ndim, rhs_batch, rhs_contract, False)
    if lhs_order != tuple(range(lhs.ndim)) or rhs_order != tuple(range(rhs.ndim)):
        lhs, rhs = lax.optimization_barrier((lax.transpose(lhs, lhs_order),
                                             lax.transpose(rhs, rhs_order)))
        nb, nc = len(lhs_batch), len(lhs_contract)
        batch = tuple(range(nb))
        dimension_numbers = ((tuple(range(lhs.ndim - nc, lhs.ndim)), tuple(range(nb, nb + nc))),
                             (batch, batch))
    # The output too: XLA would fold a transpose of it into the product by swapping operands.
    return lax.optimization_barrier(
        lax.dot_general_p.bind(lhs, rhs, dimension_numbers=dimension_numbers, **params))


def _evaluate(jaxpr, consts, *args):
    """`jax.core.eval_jaxpr`, with every product ordered and called jaxprs inlined."""
    env = {}

    def read(v):
        return v.val if isinstance(v, jex.core.Literal) else env[v]

    env.update(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))
    for eqn in jaxpr.eqns:
        inputs = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        if name == "dot_general":
            outputs = [_ordered_dot(*inputs, **eqn.params)]
        elif _CALLS.get(name) in eqn.params:
            called = eqn.params[_CALLS[name]]
            own = inputs[len(inputs) - len(called.jaxpr.invars):]  # after any operands of the call
            outputs = _evaluate(called.jaxpr, called.consts, *own)
        else:
            outputs = eqn.primitive.bind(*inputs, **eqn.primitive.get_bind_params(eqn.params))
            outputs = outputs if eqn.primitive.multiple_results else [outputs]
        env.update(zip(eqn.outvars, outputs, strict=True))
    return [read(v) for v in jaxpr.outvars]


def canonical_dots(fn):
    """`fn` with its matrix products' operands in the order XLA's fast kernels take.

    **Arguments:**

    - `fn`: a traceable function of pytrees of arrays (such as a vector field).

    **Returns:** a function with `fn`'s signature and values (up to round-off in the products'
    sums); it is meant to be evaluated (under `jit` or `vmap`), not differentiated.
    """

    def ordered(*args):
        arrays, rest = eqx.partition(args, eqx.is_array)
        flat, treedef = jax.tree_util.tree_flatten(arrays)

        def flat_fn(*leaves):
            return fn(*eqx.combine(jax.tree_util.tree_unflatten(treedef, leaves), rest))

        closed, shapes = jax.make_jaxpr(flat_fn, return_shape=True)(*flat)
        outputs = _evaluate(closed.jaxpr, closed.consts, *flat)
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shapes), outputs)

    return ordered
