"""A finished store's member variables as dask arrays, for reductions larger than memory
(`open_sweep(path, chunks=...)`): read in the store's own chunks along `run`, then put in the
design's order and shape.

The store holds members in the order they ran (by cost), so design order is a permutation of
all of them: every output block gathers from every input block. Dask's take makes a task for
each pair, so reading blocks of about `BLOCK_BYTES` (whole store chunks joined) rather than
each store chunk keeps that graph small: on a 1e6-member store, 254 tasks rather than 125,751
for the learning times (bounded memory, seconds rather than minutes)."""

from pathlib import Path

import xarray as xr

BLOCK_BYTES = 64 * 2**20


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
    out = {}
    for name in members.data_vars:
        variable = _joined(stored[name]).isel(run=position.values.ravel())
        out[name] = xr.DataArray(
            variable.data.reshape(position.shape + variable.shape[1:]),
            dims=position.dims + variable.dims[1:],
            coords={k: v for k, v in variable.coords.items() if "run" not in v.dims},
            attrs=variable.attrs)
    return out


def _joined(variable: xr.DataArray) -> xr.DataArray:
    """`variable` read in blocks of whole chunks along `run`, about `BLOCK_BYTES` each."""
    per_chunk = variable.data.nbytes * variable.data.chunks[0][0] / max(variable.shape[0], 1)
    joined = max(1, int(BLOCK_BYTES // max(per_chunk, 1)))
    return variable.chunk(run=joined * variable.data.chunks[0][0])
