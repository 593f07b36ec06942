"""Workload W2 through `ssm_jax.sweep` at scale: a `Points` design built vectorized, run in
chunks ("map" or refill lanes), optionally streamed to a zarr store, against today's path kept
as the baseline in the same run.

W2 as in `w2_class_ssm.py`: the class-level SSM (k = 10, d = 16), R ~ logU[1, 100],
gamma ~ U[0, 1.5], init scale ~ logU[1e-4, 1e-2], Tsit5 at rtol 1e-4, atol 1e-6, 100 saves on
[0, 6000], float32, recording the loss and class progress (`lean_metrics`).

Paths:
- baseline: `w2_class_ssm.run_all` with batching "map": members built by one vmap, chunks
  run under `lax.map` with diffrax's own step on one device (the fastest path before the
  sweep engine was reworked); its run seconds exclude compilation;
- sweep: `sj.sweep(problem, sj.Points(...), vectorized=True, batching=Refill(lanes=...))`
  (`refill:16` steps the lanes as one flat state, `refill:16:leaves` leaf by leaf, the
  refill path before `dynamics.lane_layout.Flat`),
  members ordered by the cost key, one compilation per device; its chunks spread over the
  local devices (`sj.use_cpu_cores()`: one CPU device per core, or `JAX_NUM_CPU_DEVICES`).
  Its run seconds are the wall seconds of the fastest warm rerun (`--repeats`; build, checks
  and assembly included, nothing compiled), or with `--repeats 0` the wall of one cold run.

    python benchmarks/w2_scale.py --configs 4096 --chunk 1024 --paths baseline map refill:16
    python benchmarks/w2_scale.py --configs 4096 --chunk 1024 \
        --paths refill:16:leaves refill:16 refill:32 --repeats 2   # the lane layouts
    python benchmarks/w2_scale.py --configs 1000000 --paths refill:16 \
        --repeats 0 --store /tmp/w2big   # end to end
"""

import argparse
import json
import platform
import resource
import shutil
import time

import diffrax
import equinox as eqx
import jax
import numpy as np
from w2_class_ssm import (
    ATOL,
    MAX_STEPS,
    RTOL,
    SAVES,
    check_accuracy,
    cost_key,
    lean_metrics,
    make_builder,
    run_all,
    w2_configs,
    w2_problem,
)

import ssm_jax as sj
from ssm_jax.sweeps.batching import batching_named

LAYOUTS = {"": sj.dynamics.Flat(), "flat": sj.dynamics.Flat(), "leaves": sj.dynamics.Leaves()}


def _batching(name: str, lanes: int | None, layout: str = ""):
    """The batching a `--paths` entry names: "map", "vmap" or "refill" with its lanes and
    lane layout."""
    if name == "refill":
        return sj.sweeps.Refill(lanes=lanes, layout=LAYOUTS[layout])
    return batching_named(name)


def sweep_path(configs, k, dim, t1, batching, lanes, chunk, store=None, repeats=0,
               layout=""):
    """One sweep over every config (then `repeats` more, warm, keeping the fastest); returns
    its numbers and per-member results. Its run seconds are wall seconds: the chunks' own run
    seconds add up the devices' times, which overlap."""
    design = sj.Points(**configs)
    flow = sj.Flow(t1, num_saves=SAVES, rtol=RTOL, atol=ATOL, max_steps=MAX_STEPS)
    walls = []
    for i in range(1 + repeats):
        if store:
            shutil.rmtree(store, ignore_errors=True)
        done = []
        start = time.perf_counter()
        ds = sj.sweep(w2_problem(k, dim), design, dynamics=flow, metrics=lean_metrics,
                      vectorized=True, batching=_batching(batching, lanes, layout),
                      chunk_size=chunk,
                      order_by=lambda ratio, power, **_: cost_key(ratio, power, t1, k),
                      store=store, progress=lambda d, n, done=done: done.append(
                          (time.perf_counter(), d)))
        walls.append(time.perf_counter() - start)
        if i == 0:
            compile_s = ds.attrs["compile_seconds"]  # summed over the devices, which overlap
    # Warm: the fastest rerun's wall (nothing left to compile); cold: the whole wall.
    wall = walls[0]
    run_s = min(walls[1:]) if repeats else wall
    steps = ds.num_steps.values
    devices = len(set(ds.chunk_device.values))
    name = batching if lanes is None else f"{batching}:{lanes}" + (f":{layout}" * bool(layout))
    row = {"path": name + f" ({devices} dev)",
           "members": steps.size, "devices": devices,
           "wall_s": wall, "compile_s": compile_s, "run_s": run_s,
           "warm": bool(repeats), "traj_per_s": steps.size / run_s,
           "traj_per_s_wall": steps.size / wall, "mean_steps": float(steps.mean()),
           "us_per_member_step": 1e6 * run_s / steps.sum(),
           "lane_efficiency": ds.attrs.get("lane_efficiency", 1.0),
           "status_ok": int((ds.status.values == 0).sum()),
           "first_progress_s": next((t - start for t, d in done if d > 0), None)}
    results = {"steps": steps, "loss": ds.loss.values,
               "learning_time": ds.learning_time.values}
    return row, results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=4096)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--t1", type=float, default=6000.0)
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--paths", nargs="+", default=["baseline", "map", "refill:16"],
                        help="baseline, map, vmap or refill:LANES")
    parser.add_argument("--store", default=None, help="stream the sweep paths to this folder")
    parser.add_argument("--check", type=int, default=4, help="members checked one by one")
    parser.add_argument("--repeats", type=int, default=1,
                        help="warm reruns of each sweep path, timed by wall (0: one cold run, "
                        "its run time its wall less its compile per device)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    # One CPU device per core (or JAX_NUM_CPU_DEVICES), before any JAX operation.
    cores = sj.use_cpu_cores()
    print(f"W2 at scale: {args.configs} configs, k = {args.k}, d = {args.dim}, "
          f"{jax.devices()[0].device_kind} x {cores}, "
          f"{platform.processor() or platform.machine()}, "
          f"jax {jax.__version__}, diffrax {diffrax.__version__}, equinox {eqx.__version__}")
    configs = w2_configs(args.configs)
    rows, checks = [], []
    rng = np.random.default_rng(1)
    members = rng.choice(args.configs, size=min(args.check, args.configs), replace=False)
    for path in args.paths:
        if path == "baseline":
            builder, static = make_builder(args.k, args.dim)
            order = np.argsort(cost_key(configs["ratio"], configs["power"], args.t1, args.k),
                               kind="stable")
            start = time.perf_counter()
            # Today's path before this work: diffrax's own step, one device.
            row, results = run_all(configs, args.k, args.dim, args.t1,
                                   min(args.chunk, args.configs), "map", order, builder, static,
                                   unroll=False)
            row = {"path": "baseline: lax.map path kept", "members": args.configs,
                   "wall_s": time.perf_counter() - start, "compile_s": row["compile_s"],
                   "run_s": row["run_s"], "traj_per_s": row["traj_per_s"],
                   "traj_per_s_wall": args.configs / (time.perf_counter() - start),
                   "mean_steps": row["mean_steps"],
                   "us_per_member_step": row["us_per_member_step"], "lane_efficiency": 1.0,
                   "status_ok": row["status_ok"], "first_progress_s": None}
        else:
            batching, _, rest = path.partition(":")
            lanes, _, layout = rest.partition(":")
            store = None
            if args.store:
                store = f"{args.store}-{path.replace(':', '-')}"
            row, results = sweep_path(configs, args.k, args.dim, args.t1, batching,
                                      int(lanes) if lanes else None, args.chunk, store,
                                      args.repeats, layout)
        row["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        rows.append(row)
        worst = check_accuracy(configs, args.k, args.dim, args.t1, results, members)
        checks.append({"path": row["path"], **worst})
        base = rows[0]["traj_per_s"]
        print(f"{row['path']:<28} wall {row['wall_s']:8.1f} s  compile {row['compile_s']:5.1f} s"
              f"  run {row['run_s']:8.1f} s  {row['traj_per_s']:7.0f} traj/s "
              f"(x{row['traj_per_s'] / base:.2f})"
              f"  {row['us_per_member_step']:5.1f} us/member-step  lane eff "
              f"{row['lane_efficiency']:.3f}  ok {row['status_ok']}  peak RSS "
              f"{row['peak_rss_gb']:.2f} GB  first progress {row['first_progress_s']}")
        print(f"{'':<28} vs gradient_flow on {len(members)} members: max |dloss|/loss(0) "
              f"{worst['loss']:.1e}, max rel |dt_learn| {worst['learning_time']:.1e}, "
              f"max |dsteps| {worst['steps']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows, "checks": checks}, f, indent=1,
                      default=float)


if __name__ == "__main__":
    main()
