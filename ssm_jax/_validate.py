"""Checks at the boundary: each raises a `ValueError` naming the parameter, its value and
what is allowed, before anything is traced or computed.

Traced values (inside `jit`/`vmap`) cannot be inspected, so every check lets them through:
validation belongs to the concrete values a user passes in.
"""

import os
from pathlib import Path

import jax
import numpy as np


def is_concrete(x) -> bool:
    """Whether `x` holds no tracer, so that its values can be inspected."""
    leaves = jax.tree_util.tree_leaves(x)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def _fail(name: str, value, allowed: str):
    shown = np.array2string(np.asarray(value), threshold=8) if np.ndim(value) else repr(value)
    raise ValueError(f"`{name}` = {shown} is not allowed: {allowed}.")


def integer(name: str, value, *, minimum: int) -> int:
    """Checks an integer (not a bool) >= `minimum`; returns it as a Python int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        _fail(name, value, f"expected an integer >= {minimum}")
    if value < minimum:
        _fail(name, value, f"expected an integer >= {minimum}")
    return int(value)


def number(name: str, value, *, low=None, high=None, low_open=False, high_open=False):
    """Checks a finite scalar (or each entry of an array) against an interval."""
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
