"""The checks of a configuration file's values: types, tables, integers, grid axes and
ranges, each raising a `ConfigError` that names the key as written in the file."""

import numpy as np

from .. import _validate


class ConfigError(ValueError):
    """A configuration file that cannot run as written."""


def typed(key: str, value, kind):
    """`value` checked to be of `kind` (float: any number, as a float; int; str).

    **Arguments:**

    - `key`: the key as written, for the error.
    - `value`: the value read.
    - `kind`: float, int or str.

    **Returns:** the value (a float for `kind` float).
    """
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
          else isinstance(value, kind) and not (kind is int and isinstance(value, bool)))
    if not ok:
        raise ConfigError(f"`{key}` = {value!r} is not allowed: expected "
                          f"{ {float: 'a number', int: 'an integer', str: 'a string'}[kind] }.")
    return float(value) if kind is float else value


def section(config: dict, name: str, schema: dict) -> dict:
    """The table `name` of `config`, its keys known and typed.

    **Arguments:**

    - `config`: the configuration's tables (edited in place: values typed).
    - `name`: the table's name.
    - `schema`: {key: kind} of the keys allowed.

    **Returns:** the table ({} where absent).
    """
    table = config.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"`{name}` must be a table ([{name}]).")
    for key, value in table.items():
        if key not in schema:
            raise ConfigError(f"Unknown key `{name}.{key}`: expected one of "
                              f"{', '.join(sorted(schema))}.")
        table[key] = typed(f"{name}.{key}", value, schema[key])
    return table


def at_least(key: str, value: int, minimum: int) -> int:
    """`value` checked to be >= `minimum`.

    **Arguments:**

    - `key`: the key as written; `value`: an integer; `minimum`: the least allowed.

    **Returns:** the value.
    """
    if value < minimum:
        raise ConfigError(f"`{key}` = {value!r} is not allowed: expected an integer >= "
                          f"{minimum}.")
    return value


def _axis_values(key: str, spec) -> list | np.ndarray:
    if isinstance(spec, list):
        values = [typed(key, v, float) for v in spec]
        return [int(v) for v in spec] if all(isinstance(v, int) for v in spec) else values
    if isinstance(spec, dict) and set(spec) == {"range"}:
        return list(range(at_least(f"{key}.range", typed(f"{key}.range", spec["range"], int),
                                   1)))
    if isinstance(spec, dict) and {"start", "stop", "num"} <= set(spec) <= {
            "start", "stop", "num", "log"}:
        start, stop = (typed(f"{key}.{k}", spec[k], float) for k in ("start", "stop"))
        num = at_least(f"{key}.num", typed(f"{key}.num", spec["num"], int), 1)
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"`{key}.log` = {log!r} is not allowed: expected true or false.")
        for name, value in (("start", start), ("stop", stop)):
            if not np.isfinite(value) or (log and value <= 0):
                raise ConfigError(f"`{key}.{name}` = {value!r} is not allowed: expected a "
                                  f"{'positive' if log else 'finite'} number"
                                  f"{' (the axis is log-spaced)' if log else ''}.")
        return np.geomspace(start, stop, num) if log else np.linspace(start, stop, num)
    raise ConfigError(f"`{key}` = {spec!r} is not allowed: expected a list of numbers, "
                      "{start, stop, num[, log]} or {range = N}.")


def axis(key: str, spec, whole: bool = False) -> np.ndarray:
    """A grid axis from its specification, checked: at least one value, finite, distinct,
    whole numbers for an integer setting.

    **Arguments:**

    - `key`: the key as written (`grid.NAME`).
    - `spec`: a list of numbers, {start, stop, num[, log]} or {range = N}.
    - `whole`: whether the setting is an integer.

    **Returns:** the axis's values.
    """
    values = np.asarray(_axis_values(key, spec))
    if values.size == 0:
        raise ConfigError(f"`{key}` = [] is not allowed: a grid axis needs at least one value.")
    if not np.all(np.isfinite(values)):
        raise ConfigError(f"`{key}` = {values.tolist()} is not allowed: expected finite "
                          "numbers.")
    if whole:
        if not np.all(values == np.round(values)):
            raise ConfigError(f"`{key}` = {values.tolist()} is not allowed: expected whole "
                              "numbers (an integer setting).")
        values = values.astype(int)
    if np.unique(values).size != values.size:
        raise ConfigError(f"`{key}` = {values.tolist()} is not allowed: a value repeats; "
                          "expected distinct values, one per grid point.")
    return values


def in_range(key: str, values, upper: float | None = None) -> None:
    """Checks learning rates (> 0, `upper` None) and momenta (in [0, `upper`)), fixed or
    along an axis.

    **Arguments:**

    - `key`: the key as written; `values`: a number or an axis; `upper`: the bound.
    """
    values = np.atleast_1d(np.asarray(values, dtype=float))
    too_low = (values < 0) if upper is not None else (values <= 0)
    bad = values[too_low | ~np.isfinite(values) | (values >= (upper or np.inf))]
    if bad.size:
        allowed = f"in [0, {upper:g})" if upper is not None else "> 0 (finite)"
        raise ConfigError(f"`{key}` = {bad[0]:g} is not allowed: expected a number "
                          f"{allowed}.")


def fits(key: str, values, dtype, *, zero_allowed: bool = True, kind=float) -> None:
    """Checks a number, or an axis, in the precision the sweep runs in: floats within the
    dtype's range (nonzero ones not rounding to 0 where 0 is not allowed); integers within
    its integers (int32 beside float32); seeds (`*.seed`) within a key's 32 bits.

    **Arguments:**

    - `key`: the key as written; `values`: a number or an axis.
    - `dtype`: the run's floating dtype (e.g. "float32").
    - `zero_allowed`: whether a float that rounds to 0 keeps its meaning.
    - `kind`: float or int, the setting's type.
    """
    try:
        if key.rsplit(".", 1)[-1] == "seed":
            _validate.seed(key, values)
        elif kind is int:
            limit = int(np.iinfo(_validate.run_int_dtype(dtype)).max)
            bad = [int(v) for v in np.ravel(values).tolist() if int(v) > limit]
            if bad:
                raise ConfigError(f"`{key}` = {bad[0]} is not allowed: expected an integer <= "
                                  f"{limit}, the largest {_validate.run_int_dtype(dtype).name} "
                                  "the sweep computes with.")
        else:
            _validate.representable(key, values, dtype, zero_allowed=zero_allowed)
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(str(error)) from None
