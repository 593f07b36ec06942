"""An explicit Runge-Kutta step with its stages unrolled: diffrax's `solver.step` for a
solver with a Butcher tableau, same arithmetic, same outputs.

diffrax runs the stages in a checkpointed while loop that writes a stage buffer at a dynamic
index; XLA cannot fuse across it, and under `jax.vmap` the writes become batched scatters. With
the stages unrolled (static indices) many members' steps vectorize as their vector fields do.
"""

import functools

import diffrax
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np


def unrolls(solver) -> bool:
    """Whether `step` unrolls `solver`: an explicit Runge-Kutta solver with one tableau."""
    return isinstance(solver, diffrax.AbstractERK) and isinstance(
        solver.tableau, diffrax.ButcherTableau)


def _dot(row, ks):
    # diffrax's `vector_tree_dot`: the row against the whole (stages, ...) buffer.
    return jax.tree_util.tree_map(
        lambda k: jnp.tensordot(row, k, axes=1, precision=jax.lax.Precision.HIGHEST), ks)


def _add(y, increment):
    return jax.tree_util.tree_map(lambda a, b: a + b, y, increment)


def step(solver, terms, t0, t1, y0, args, solver_state, made_jump):
    """`solver.step(terms, t0, t1, y0, args, solver_state, made_jump)`, with the stages of an
    explicit Runge-Kutta solver unrolled (other solvers: diffrax's own step).

    An FSAL solver takes its first stage from `solver_state`, except on a first step or after
    a jump; under `jax.vmap` that holds member by member, as in a solve of the member alone,
    and the evaluation runs (in a `lax.cond`) only when some member needs it.

    **Arguments:** as `diffrax.AbstractSolver.step`, after the solver.

    **Returns:** (y1, y_error, dense_info, solver_state, result), as `solver.step`, so that
    the solver's interpolation and any step-size controller work unchanged.
    """
    if not unrolls(solver):
        return solver.step(terms, t0, t1, y0, args, solver_state, made_jump)
    tableau = solver.tableau
    num_stages = tableau.num_stages
    fsal = tableau.fsal and not terms.is_vf_expensive(t0, t1, y0, args)
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(y0))
    a_lower = np.zeros((num_stages, num_stages), np.result_type(*tableau.a_lower))
    for i, row in enumerate(tableau.a_lower):
        a_lower[i + 1, : i + 1] = row
    a_lower = jnp.asarray(a_lower, dtype)
    c = jnp.asarray(np.concatenate([[tableau.c1], tableau.c]), jnp.result_type(t0, t1))
    # Not constants, as diffrax's loop reads them: XLA would fold constant rows and times
    # into other arithmetic, and the error estimate, whose round-off sets the next step,
    # would differ in its last bits.
    a_lower, c = jax.lax.optimization_barrier((a_lower, c))
    dt, control = t1 - t0, terms.contr(t0, t1)

    def buffer(ks):
        # diffrax's (stages, ...) buffer, stacked from its rows: writing a row into it
        # (`.at[i].set`) would be a scatter under `jax.vmap`.
        return jax.tree_util.tree_map(lambda *rows: jnp.stack(rows), *ks)

    def stage(i, ks):
        """Stage i from stages 0..i-1 (zeros beyond): its y, f and k."""
        yi = _add(y0, _dot(a_lower[i], buffer(ks)))
        ti = jnp.where(c[i] == 1, t1, t0 + c[i] * dt)  # exactly t1 at c = 1
        if fsal:
            fi = terms.vf(ti, yi, args)
            return yi, fi, terms.prod(fi, control)
        return yi, None, terms.vf_prod(ti, yi, args, control)

    ks = [jax.tree_util.tree_map(jnp.zeros_like, y0)] * num_stages
    if fsal:
        first_step, f0 = solver_state
        # The last stage of the previous step, unless invalid (first step or a jump); the
        # evaluation runs only if some member of a `jax.vmap` batch needs it.
        stale = first_step | made_jump
        kept = terms.prod(f0, control)
        ks[0] = jax.lax.cond(eqxi.unvmap_any(stale), lambda: jax.tree_util.tree_map(
            functools.partial(jnp.where, stale), stage(0, ks)[2], kept), lambda: kept)
    for i in range(1 if fsal else 0, num_stages):
        yi, fi, ks[i] = stage(i, ks)
    ks = buffer(ks)
    if tableau.ssal:
        y1 = yi
    else:
        y1 = _add(y0, _dot(jnp.asarray(tableau.b_sol, dtype), ks))
    y_error = _dot(jnp.asarray(tableau.b_error, dtype), ks)
    new_state = (False, fi) if fsal else None
    return y1, y_error, dict(y0=y0, y1=y1, k=ks), new_state, diffrax.RESULTS.successful
