"""Checks at the boundary: each raises a `ValueError` naming the parameter, its value and
what is allowed, before anything is traced or computed.

Traced values (inside `jit`/`vmap`) cannot be inspected, so every check lets them through:
validation belongs to the concrete values a user passes in.

Numbers are checked in the precision they will run in (`run_dtype`: float32 unless
`jax_enable_x64`), so that a value fine in Python but out of float32's range is refused here,
not found later as `inf` or `nan` in the results.
"""

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """Whether `x` holds no tracer, so that its values can be inspected."""
    leaves = jax.tree_util.tree_leaves(x)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def _fail(name: str, value, allowed: str):
    shown = np.array2string(np.asarray(value), threshold=8) if np.ndim(value) else repr(value)
    raise ValueError(f"`{name}` = {shown} is not allowed: {allowed}.")


def integer(name: str, value, *, minimum: int, maximum: int | None = None) -> int:
    """Checks an integer (not a bool) >= `minimum` (and <= `maximum`); returns it as a Python
    int."""
    allowed = (f"expected an integer >= {minimum}" if maximum is None
               else f"expected an integer in {minimum}..{maximum}")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        _fail(name, value, allowed)
    if value < minimum or (maximum is not None and value > maximum):
        _fail(name, value, allowed)
    return int(value)


def run_dtype(dtype=None) -> np.dtype:
    """The floating dtype a run computes in: `dtype` where given, else the one JAX uses now
    (float64 with `jax_enable_x64`, float32 otherwise).

    **Arguments:**

    - `dtype`: a floating dtype or its name, or None for JAX's current default.

    **Returns:** a NumPy floating dtype.
    """
    return np.dtype(jnp.result_type(float) if dtype is None else dtype)


def run_int_dtype(dtype=None) -> np.dtype:
    """The integer dtype that goes with `run_dtype(dtype)`: int32 beside float32 (JAX's
    default without `jax_enable_x64`), int64 beside float64.

    **Arguments:**

    - `dtype`: as for `run_dtype`.

    **Returns:** a NumPy integer dtype.
    """
    return np.dtype(np.int32 if run_dtype(dtype).itemsize < 8 else np.int64)


def representable(name: str, value, dtype=None, *, zero_allowed: bool = True):
    """Checks that a finite number (or each entry of an array) keeps its meaning in the run's
    dtype: refuses magnitudes beyond its largest (they become inf) and, where 0 is not
    allowed, nonzero magnitudes below its smallest normal number (they become 0, or lose
    their digits and are flushed to 0 by accelerators).

    **Arguments:**

    - `name`: the parameter as the user typed it, for the message.
    - `value`: a number or an array of numbers (traced values pass).
    - `dtype`: the dtype the value runs in (`run_dtype`); None for JAX's current default.
    - `zero_allowed`: whether a value that becomes 0 still means what it meant.

    **Returns:** `value`.
    """
    if not is_concrete(value):
        return value
    dtype = run_dtype(dtype)
    info = np.finfo(dtype)
    arr = np.abs(np.asarray(value, dtype=float))
    where = f"{dtype.name}, the precision this runs in,"
    def first(bad):  # an axis shows its first offending value, not all of them
        return np.asarray(value, dtype=float)[bad][0].item() if arr.ndim else value

    if np.any(arr > info.max):
        _fail(name, first(arr > info.max), f"{where} holds magnitudes up to "
                                           f"{float(info.max):.4g}, so it would become inf")
    tiny = (arr > 0) & (arr < info.tiny)
    if not zero_allowed and np.any(tiny):
        _fail(name, first(tiny), f"{where} holds no nonzero magnitude below "
                                 f"{float(info.tiny):.4g} (its smallest normal number), so it "
                                 "would become 0")
    return value


def number(name: str, value, *, low=None, high=None, low_open=False, high_open=False,
           dtype=None):
    """Checks a finite scalar (or each entry of an array) against an interval, and that it
    fits the precision it runs in (`representable`; 0 may underflow only where the interval
    allows 0).

    **Arguments:**

    - `name`: the parameter as the user typed it, for the message.
    - `value`: a number or an array (traced values pass).
    - `low`, `high`, `low_open`, `high_open`: the interval (None: unbounded).
    - `dtype`: the dtype the value runs in; None for JAX's current default (`run_dtype`).

    **Returns:** `value`.
    """
    if not is_concrete(value):
        return value
    arr = np.asarray(value, dtype=float)
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    allowed = f"expected finite values in {lo}{'-inf' if low is None else low}, "
    allowed += f"{'inf' if high is None else high}{hi}"
    if not np.all(np.isfinite(arr)):
        _fail(name, value, allowed)
    if low is not None and np.any(arr <= low if low_open else arr < low):
        _fail(name, value, allowed)
    if high is not None and np.any(arr >= high if high_open else arr > high):
        _fail(name, value, allowed)
    zero_allowed = ((low is None or (low < 0 or (low == 0 and not low_open)))
                    and (high is None or (high > 0 or (high == 0 and not high_open))))
    return representable(name, value, dtype, zero_allowed=zero_allowed)


SEED_LIMIT = 2**32
"""Seeds are 0..SEED_LIMIT - 1: a key holds 32 bits of seed in float32 runs, where a larger
seed would silently give the key of a smaller one (2**32 + 5 that of 5)."""


def seed(name: str, value):
    """Checks a seed, or each entry of an array of seeds: an integer in 0..2**32 - 1, so
    that distinct seeds give distinct keys in every precision.

    **Arguments:**

    - `name`: the parameter as the user typed it, for the message.
    - `value`: an integer or an array of integers (traced values pass).

    **Returns:** `value`.
    """
    if not is_concrete(value):
        return value
    allowed = (f"expected integers in 0..{SEED_LIMIT - 1} (a key holds 32 bits of seed; a "
               "larger or negative seed would repeat the key of another)")
    arr = np.asarray(value)
    if isinstance(value, bool) or not (np.issubdtype(arr.dtype, np.integer) or (
            np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)))):
        _fail(name, value, allowed)
    values = [int(v) for v in np.ravel(arr).tolist()] if arr.dtype != object else []
    bad = [v for v in values if not 0 <= v < SEED_LIMIT]
    if bad:
        _fail(name, bad[0] if arr.ndim else value, allowed)
    return value


def shape(name: str, value, expected: tuple, meaning: str):
    """Checks that `value` has shape `expected`; `meaning` says what the shape stands for."""
    if np.shape(value) != tuple(expected):
        raise ValueError(
            f"`{name}` has shape {np.shape(value)}, expected {tuple(expected)} ({meaning})."
        )
    return value


def labels(name: str, value, num_classes: int):
    """Checks a 1-D integer array of class indices in 0..num_classes-1; returns it (numpy)."""
    arr = np.asarray(value)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"`{name}` must be a 1-D integer array, got dtype {arr.dtype} "
                         f"and shape {arr.shape}.")
    bad = arr[(arr < 0) | (arr >= num_classes)]
    if bad.size:
        _fail(name, bad, f"labels must lie in 0..{num_classes - 1}")
    return arr


def choice(name: str, value, allowed):
    """Checks that `value` is one of `allowed`."""
    if value not in allowed:
        _fail(name, value, f"expected one of {', '.join(map(repr, allowed))}")
    return value


def schedule(steps, record_every) -> tuple[int, int]:
    """`steps` >= 1 recorded every `record_every` >= 1 steps, which must divide it."""
    steps = integer("steps", steps, minimum=1)
    record_every = integer("record_every", record_every, minimum=1)
    if steps % record_every:
        raise ValueError(f"`record_every` = {record_every} is not allowed: it must divide "
                         f"`steps` = {steps}.")
    return steps, record_every


def output_folder(name: str, path, files=()) -> Path:
    """Checks, without writing anything, that results can be written to the folder `path`:
    it is a folder or can be made as one (its nearest existing parent is a writable folder),
    and none of `files` in it is a folder or a file that cannot be overwritten.

    **Arguments:**

    - `name`: the parameter that gave the path (e.g. "--out" or "store"), for the message.
    - `path`: the output folder, existing or to be made; "~" is expanded.
    - `files`: names of the files to be written into it.

    **Returns:** `path` as a `Path` (with "~" expanded).
    """
    if not str(path).strip():
        _fail(name, str(path), "expected the path of a folder")
    path = Path(path).expanduser()
    shown = str(path)
    allowed = "expected a folder that exists and is writable, or one that can be made"
    try:
        existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    except OSError as error:  # e.g. a parent that may not be looked into
        _fail(name, shown, f"it cannot be looked up ({error}); {allowed}")
    if existing == path and not path.is_dir():
        _fail(name, shown, f"it is a file; {allowed}")
    if not existing.is_dir():
        _fail(name, shown, f"'{existing}' is a file; {allowed}")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "it" if existing == path else f"its parent '{existing}'"
        _fail(name, shown, f"{where} is not writable; {allowed}")
    for file in files:
        target = path / file
        if target.is_dir():
            _fail(name, shown, f"'{target}' (a file it would write) is a folder; expected "
                               "a folder whose result files are files or missing")
        if target.exists() and not os.access(target, os.W_OK):
            _fail(name, shown, f"'{target}' (a file it would write) is not writable; "
                               "expected a folder whose result files can be overwritten")
    return path


def axis(name: str, values, allowed=None) -> tuple:
    """Checks the values of a result's axis: at least one, no repeats (a repeated label makes
    selection ambiguous) and, given `allowed`, each one of them.

    **Arguments:**

    - `name`: the parameter, for the message.
    - `values`: a sequence of labels.
    - `allowed`: the labels allowed, or None for any.

    **Returns:** `values` as a tuple.
    """
    given = values
    values = tuple(np.ravel(values).tolist()) if np.ndim(values) == 1 else ()

    def fail(why):
        raise ValueError(f"`{name}` = {given!r} is not allowed: {why}.")

    if not values:
        fail("expected a sequence of at least one value")
    if len(set(values)) < len(values):
        fail("expected distinct values")
    for value in values:
        if allowed is not None and value not in allowed:
            fail(f"{value!r} is not one of {', '.join(map(repr, allowed))}")
    return values
