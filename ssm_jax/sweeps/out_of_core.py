"""A finished store's member variables as dask arrays, for reductions larger than memory
(`open_sweep(path, chunks=...)`): read in the store's own chunks along `run`, then put in the
design's order and shape."""

from pathlib import Path

import xarray as xr


def dask_members(path, members: xr.Dataset, position: xr.DataArray, chunks) -> dict:
    """The member variables of the store at `path` as dask arrays over the design's dimensions.

    **Arguments:**

    - `path`: the store's folder.
    - `members`: the member variables as stored (over `run`), for their names.
    - `position`: each design member's place along `run` in the store, over the design's
      dimensions.
    - `chunks`: dask's chunks of `run`, as xarray's `open_zarr` takes them (`{}`: the store's).

    **Returns:** {name: `xarray.DataArray`} over the design's dimensions and the variable's
    own (time, cls | mode): one take along `run` (each design row gathers from the chunks
    that hold its members), reshaped.
    """
    try:
        import dask.array  # noqa: F401
    except ImportError:
        raise ValueError(f"`chunks` = {chunks!r} needs dask, which is not installed: pip "
                         "install \"ssm_jax[cluster]\" (or pip install \"dask[array]\").") \
            from None
    stored = xr.open_zarr(Path(path) / "results.zarr", consolidated=True, chunks=chunks)
    taken = stored[list(members.data_vars)].isel(run=position.values.ravel())
    out = {}
    for name in taken.data_vars:
        variable = taken[name]
        out[name] = xr.DataArray(
            variable.data.reshape(position.shape + variable.shape[1:]),
            dims=position.dims + variable.dims[1:],
            coords={k: v for k, v in variable.coords.items() if "run" not in v.dims},
            attrs=variable.attrs)
    return out
