"""Peak memory of a reduction over a 1e6-member store: `open_sweep(path, chunks={})` (dask)
against `open_sweep(path).load()`. The store is written synthetically at W2's shapes (k = 10
classes, 100 saves, loss and class progress, chunks of 4000 members in a scrambled cost order)
through the store's own writer, without computing a flow.

    python benchmarks/out_of_core.py build /tmp/w2_store
    python benchmarks/out_of_core.py dask /tmp/w2_store [VARIABLE]   # each in a fresh process
    python benchmarks/out_of_core.py load /tmp/w2_store [VARIABLE]   # default learning_time
"""

import resource
import sys
import time

import numpy as np


def build(path, n_axis=100, chunk=4000, k=10, saves=100):
    import ssm_jax as sj
    from ssm_jax.sweeps.dataset import chunk_dataset, label_by_grid, merge_chunks
    from ssm_jax.sweeps.store import SweepStore

    grid = sj.Grid(ratio=np.linspace(1, 100, n_axis), power=np.linspace(0, 1, n_axis),
                   seed=np.arange(n_axis))
    order = np.argsort(np.random.default_rng(0).permutation(grid.size), kind="stable")
    manifest = {"design": grid.kind, "grid": grid.to_dict(), "dynamics": {"t1": 6000.0},
                "batching": "refill", "chunk_size": chunk, "order": order.tolist(),
                "class_groups": None, "pad_to": 10, "max_buckets": 1, "seed": 0,
                "predictions": [], "metadata": None}
    store = SweepStore(path, manifest, grid.coordinates(),
                       lambda ds: label_by_grid(merge_chunks([ds]), grid, manifest))
    ts = np.linspace(0, 6000, saves)
    try:
        for c in range(grid.size // chunk):
            members = order[c * chunk:(c + 1) * chunk]
            centre = 500 + (members % 997)[:, None, None] * 3.0 + np.arange(k) * 40.0
            progress = (1 / (1 + np.exp(-(ts[None, :, None] - centre) / 100))).astype("f4")
            loss = (1 - progress.mean(-1)).astype("f4")
            stats = {"num_steps": np.full(chunk, 300, "i4"), "status": np.zeros(chunk, "i4"),
                     "num_vector_field_evals": np.full(chunk, 1800, "i4")}
            ds = chunk_dataset({"loss": loss, "class_progress": progress}, stats, members,
                               record_times=ts, index=c, compile_seconds=0.0,
                               run_seconds=0.0, device="synthetic")
            store.write(c, ds)
    finally:
        store.close()


def reduce(path, how, name):
    import ssm_jax as sj

    start = time.perf_counter()
    if how == "dask":
        out = sj.open_sweep(path, chunks={})[name].mean("seed").compute()
    else:
        out = sj.open_sweep(path).load()[name].mean("seed")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{how}: {name}.mean('seed') {out.shape}: {seconds:.1f} s, peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2])
    else:
        reduce(sys.argv[2], sys.argv[1], sys.argv[3] if len(sys.argv) > 3 else "learning_time")
