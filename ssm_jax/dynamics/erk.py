"""An explicit Runge-Kutta step with its stages unrolled: diffrax's `solver.step` for a
solver with a Butcher tableau, the same outputs up to round-off.

diffrax runs the stages in a checkpointed while loop that writes a stage buffer at a dynamic
index and dots each tableau row against the whole buffer; XLA cannot fuse across it, and under
`jax.vmap` the writes become batched scatters. Unrolled, each stage's sum over the earlier
stages is one fused elementwise loop, and many members' steps vectorize as their vector
fields do."""

import functools

import diffrax
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np


def unrolls(solver) -> bool:
    """Whether `step` unrolls `solver`: an explicit Runge-Kutta solver with one tableau (not
    one that a wrapper such as `Unrolled` forwards `isinstance` checks to)."""
    return isinstance(solver, diffrax.AbstractERK) and isinstance(
        getattr(solver, "tableau", None), diffrax.ButcherTableau)


def _combine(row, ks):
    """sum_j row[j] k_j over the nonzero entries of a tableau's row, one fused elementwise
    sum per leaf (a dot against a stacked stage buffer would copy the buffer at every stage).
    """
    terms = [(float(a), k) for a, k in zip(row, ks, strict=False) if a != 0]
    return jax.tree_util.tree_map(
        lambda *leaves: functools.reduce(
            lambda total, i: total + terms[i][0] * leaves[i], range(1, len(terms)),
            terms[0][0] * leaves[0]),
        *[k for _, k in terms])


def _add(y, increment):
    return jax.tree_util.tree_map(lambda a, b: a + b, y, increment)


def step(solver, terms, t0, t1, y0, args, solver_state, made_jump):
    """`solver.step(terms, t0, t1, y0, args, solver_state, made_jump)`, with the stages of an
    explicit Runge-Kutta solver unrolled (other solvers: diffrax's own step); equal to it up
    to round-off (the stage sums run in another order).

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
    c = jnp.asarray(np.concatenate([[tableau.c1], tableau.c]), jnp.result_type(t0, t1))
    # Not a constant, as diffrax's loop reads it: XLA would fold the stage times into other
    # arithmetic, and they would differ from diffrax's in their last bits.
    c = jax.lax.optimization_barrier(c)
    dt, control = t1 - t0, terms.contr(t0, t1)

    def stage(i, ks):
        """Stage i from stages 0..i-1: its y, f and k."""
        yi = y0 if i == 0 else _add(y0, _combine(tableau.a_lower[i - 1], ks))
        ti = jnp.where(c[i] == 1, t1, t0 + c[i] * dt)  # exactly t1 at c = 1
        if fsal:
            fi = terms.vf(ti, yi, args)
            return yi, fi, terms.prod(fi, control)
        return yi, None, terms.vf_prod(ti, yi, args, control)

    if fsal:
        first_step, f0 = solver_state
        # The last stage of the previous step, unless invalid (first step or a jump); the
        # evaluation runs only if some member of a `jax.vmap` batch needs it.
        stale = first_step | made_jump
        kept = terms.prod(f0, control)
        ks = [jax.lax.cond(eqxi.unvmap_any(stale), lambda: jax.tree_util.tree_map(
            functools.partial(jnp.where, stale), stage(0, [])[2], kept), lambda: kept)]
    else:
        ks = []
    for i in range(len(ks), num_stages):
        yi, fi, k = stage(i, ks)
        ks.append(k)
    y1 = yi if tableau.ssal else _add(y0, _combine(tableau.b_sol, ks))
    y_error = _combine(tableau.b_error, ks)
    new_state = (False, fi) if fsal else None
    # The dense output reads the stages as diffrax's (stages, ...) buffer.
    k = jax.tree_util.tree_map(lambda *rows: jnp.stack(rows), *ks)
    return y1, y_error, dict(y0=y0, y1=y1, k=k), new_state, diffrax.RESULTS.successful


class Unrolled(diffrax.AbstractWrappedSolver):
    """An explicit Runge-Kutta `solver` that steps with its stages unrolled (`step`), for
    `diffrax.diffeqsolve`: everything else (its state, order, dense output) is the solver's,
    and `isinstance` checks see the solver it wraps."""

    solver: diffrax.AbstractSolver

    def __check_init__(self):
        if not unrolls(self.solver):
            raise ValueError(f"`solver` = {type(self.solver).__name__} is not allowed: "
                             "expected an explicit Runge-Kutta solver with one tableau (not "
                             "one already unrolled).")

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):
        return self.solver.interpolation_cls

    @property
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

    def error_order(self, terms):
        return self.solver.error_order(terms)

    def init(self, terms, t0, t1, y0, args):
        return self.solver.init(terms, t0, t1, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        return step(self.solver, terms, t0, t1, y0, args, solver_state, made_jump)

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)


def unrolled(solver: diffrax.AbstractSolver) -> diffrax.AbstractSolver:
    """`solver` stepping with its stages unrolled where that is possible.

    **Arguments:**

    - `solver`: a diffrax solver.

    **Returns:** `Unrolled(solver)` where `unrolls(solver)`; otherwise `solver` as it is (one
    already `Unrolled`, or one without a single explicit tableau).
    """
    return Unrolled(solver) if unrolls(solver) else solver


def stepped(solver: diffrax.AbstractSolver) -> diffrax.AbstractSolver:
    """The solver whose steps `solver` takes: the one an `Unrolled` wraps, or `solver`.

    **Arguments:**

    - `solver`: a diffrax solver.

    **Returns:** the diffrax solver that names the method (its tableau, its evaluations).
    """
    return solver.solver if isinstance(solver, Unrolled) else solver
