"""Workload W1 (see w1.py) at B members on a CPU: the sweep engine's vectorized, bucketed and
refill paths against today's sweep and against the scipy loop at matched accuracy, all measured
in one process, interleaved round by round so that every path sees the same machine load.

    python benchmarks/w1_scale.py --batch 64 [--t1 4000] [--paths ...] [--json PATH]

Paths:
- today:   `ssm_jax.sweep` as it ran before vectorized builds (`sweep_throughput.py`, 3.8
           traj/s in `peers.py`): every member built in Python, all padded to the largest n
           (`pad_to` = max n, `max_buckets` = 1), batching "map", one chunk on one device,
           diffrax's own Runge-Kutta step (`Map(unroll=False)`).
- new:     `ssm_jax.sweep(ConfiguredProblem, Points, vectorized=True, ...)`, each given by a
           spec `batching[:L<lanes>][:b<min bucket>][:c<chunk size>][:affine]`, e.g.
           "refill:L8" or "map:b16:c8:affine". "affine" integrates the flow in class-affine
           coordinates (`Flow(coordinates="class_affine")`), the parameters otherwise. `b` is
           `sweep`'s `min_bucket` (members per size bucket at least; 256 by default, so below
           512 members every member is padded to the largest), so that a small B gets size
           buckets too. Chunks spread over the local devices: with one CPU device per core
           (`JAX_NUM_CPU_DEVICES`, `ssm_jax.use_cpu_cores`) a path whose chunks are at most
           half the members runs on two cores.
- scipy:   `solve_ivp(method="RK45")` in a Python loop over the unpadded members (as in
           `peers.py`), at W1's tolerances (rtol 1e-4, atol 1e-6), then tightened half a
           decade at a time (atol = rtol / 100) until its error is at most the largest of the
           sweep paths'.

Round 0 runs every JAX path once (compilation; its wall time is "cold"); then `--repeats`
rounds run every path again, and each path keeps its fastest round ("warm"). scipy's ladder
runs once, between rounds 1 and 2; the rungs at W1's tolerance and at matched accuracy run again
in each later round. Seconds per sweep are split as the dataset's attributes record them:
compile, run (the compiled chunks), and other (wall less both: checks, building, padding,
assembling the dataset). `max |dp|` is the largest difference in class progress over members,
saves and classes from a float64 Dopri8 reference at rtol 1e-10 from the same float32 start
(`w1.reference`). numpy's BLAS runs on one thread (as in `peers.py`); XLA on its own.
"""

import argparse
import json
import os
import platform
import time

import diffrax
import equinox as eqx
import jax
import numpy as np
import scipy
from threadpoolctl import threadpool_limits
from w1 import (
    ATOL,
    RTOL,
    SAVES,
    make_problem,
    member_arrays,
    padded_problems,
    reference,
    scipy_path,
    w1_points,
)

import ssm_jax as sj
from ssm_jax.sweeps.batching import batching_named
from ssm_jax.sweeps.config import ConfiguredProblem

DEFAULT_PATHS = ("map", "map:b16:c8", "refill:L4", "refill:L8", "refill:L16",
                 "refill:L4:b16:c16")
FIXED = dict(model="ufm", loss="square", num_classes=10, minority_size=10, dim=32,
             init_scale=1e-3)


def parse_spec(spec: str) -> dict:
    """"refill:L8:b16:c16:affine" -> dict(batching=Refill(lanes=8), min_bucket=16,
    chunk_size=16, coordinates="class_affine")."""
    batching, *knobs = spec.split(":")
    names = {"L": "lanes", "b": "min_bucket", "c": "chunk_size"}
    out = dict(batching=batching_named(batching), coordinates="parameters")
    for knob in knobs:
        if knob == "affine":
            out["coordinates"] = "class_affine"
        elif knob[:1] not in names or not knob[1:].isdigit():
            raise ValueError(f"`--paths` entry {spec!r} has knob {knob!r}: expected L<lanes>, "
                             "b<min bucket>, c<chunk size> or affine.")
        elif knob[0] == "L":
            out["batching"] = sj.sweeps.Refill(lanes=int(knob[1:]))
        else:
            out[names[knob[0]]] = int(knob[1:])
    return out


def timed_sweep(fn):
    """Runs a sweep; returns its numbers and its class progress (member, time, cls)."""
    start = time.perf_counter()
    ds = fn()
    wall = time.perf_counter() - start
    compile_s, run_s = float(ds.attrs["compile_seconds"]), float(ds.attrs["run_seconds"])
    progress = ds.class_progress.transpose(ds.class_progress.dims[0], "time", "cls").values
    numbers = dict(wall=wall, compile=compile_s, run=run_s, other=wall - compile_s - run_s,
                   mean_steps=float(ds.attrs["mean_steps"]),
                   max_steps=float(ds.attrs["max_steps"]),
                   lane_efficiency=float(ds.attrs.get("lane_efficiency", np.nan)),
                   chunks=int(ds.sizes["chunk"]))
    return numbers, progress


def sweep_paths(points, n_max, specs, t1):
    """{name: function running that path's sweep}."""
    grid = sj.Grid(member=np.arange(len(points)))
    # Today's sweep as it ran before: diffrax's own step, one device.
    before = sj.Flow(t1, num_saves=SAVES, rtol=RTOL, atol=ATOL)
    paths = {"today": lambda: sj.sweep(lambda member: make_problem(**points[member]), grid,
                                       dynamics=before, pad_to=n_max, max_buckets=1,
                                       batching=sj.sweeps.Map(unroll=False),
                                       chunk_size=len(points),
                                       devices=jax.local_devices()[:1])}
    design = sj.Points(ratio=[p["ratio"] for p in points], power=[p["power"] for p in points],
                       seed=[p["seed"] for p in points])
    problem = ConfiguredProblem(fixed=tuple(sorted(FIXED.items())))
    for spec in specs:
        knobs = parse_spec(spec)
        flow = sj.Flow(t1, num_saves=SAVES, rtol=RTOL, atol=ATOL,
                       coordinates=knobs.pop("coordinates"))
        paths[spec] = lambda knobs=knobs, flow=flow: sj.sweep(problem, design, dynamics=flow,
                                                              vectorized=True, **knobs)
    return paths


def scipy_rungs(start_rtol=RTOL, factor=10 ** -0.5, count=9):
    """(rtol, atol) from W1's tolerances down by `factor` per rung, atol = rtol / 100."""
    return [(start_rtol * factor ** i, start_rtol * factor ** i * ATOL / RTOL)
            for i in range(count)]


def error(progress, ref):
    return float(np.max(np.abs(progress - ref)))


def run_batch(size, args):
    points = w1_points(size)
    problems, n_max = padded_problems(points)
    ts_np = np.asarray(sj.save_times(args.t1, SAVES), np.float64)
    paths = sweep_paths(points, n_max, args.paths, args.t1)
    unpadded = [member_arrays(*make_problem(**p)) for p in points]
    cold, warm, errors = {}, {name: [] for name in paths}, {}

    def jax_round(record):
        for name, fn in paths.items():
            numbers, progress = timed_sweep(fn)
            print(f"  {name}: {numbers['wall']:.1f} s", flush=True)
            record(name, numbers, progress)

    def first(name, numbers, progress):
        cold[name] = numbers
        errors[name] = progress

    def scipy_run(rtol, atol):
        start = time.perf_counter()
        progress, evals = scipy_path(unpadded, ts_np, rtol, atol)
        return time.perf_counter() - start, progress, evals

    jax_round(first)
    start = time.perf_counter()
    ref = reference(problems, ts_np)
    ref_seconds = time.perf_counter() - start
    errors = {name: error(p, ref) for name, p in errors.items()}
    ours = max(errors.values())
    for r in range(args.repeats):
        jax_round(lambda name, numbers, _: warm[name].append(numbers))
        if r == 0:  # the ladder, once: tighten until scipy's error is at most ours
            scipy_path(unpadded[:1], ts_np[:2])  # first-call costs
            ladder = []
            for rtol, atol in scipy_rungs():
                seconds, progress, evals = scipy_run(rtol, atol)
                ladder.append(dict(rtol=rtol, atol=atol, seconds=[seconds], evals=evals,
                                   max_dp=error(progress, ref)))
                print(f"  scipy RK45 rtol {rtol:.2g}: {seconds:.1f} s, max |dp| "
                      f"{ladder[-1]['max_dp']:.2g}", flush=True)
                if ladder[-1]["max_dp"] <= ours:
                    break
        else:
            for rung in {id(x): x for x in (ladder[0], ladder[-1])}.values():
                rung["seconds"].append(scipy_run(rung["rtol"], rung["atol"])[0])
    matched = ladder[-1] if ladder[-1]["max_dp"] <= ours else None

    best = {name: min(rounds, key=lambda x: x["wall"]) for name, rounds in warm.items()}
    base = best["today"]
    rows = {}
    for name, b in best.items():
        rows[name] = dict(b, cold_wall=cold[name]["wall"], cold_compile=cold[name]["compile"],
                          traj_per_s_run=size / b["run"], traj_per_s_wall=size / b["wall"],
                          x_today_wall=base["wall"] / b["wall"],
                          x_today_run=base["run"] / b["run"],
                          x_today_cold=cold["today"]["wall"] / cold[name]["wall"],
                          max_dp=errors[name])
    scipy_same, scipy_matched = min(ladder[0]["seconds"]), matched and min(matched["seconds"])
    for r in rows.values():
        r["x_scipy_same_tol"] = scipy_same / r["wall"]
        r["x_scipy_matched"] = scipy_matched / r["wall"] if matched else None
    out = dict(batch=size, n_max=n_max, t1=args.t1, reference_seconds=ref_seconds,
               ours_max_dp=ours, paths=rows, scipy_ladder=ladder,
               scipy_matched=None if matched is None else dict(rtol=matched["rtol"],
                                                               atol=matched["atol"]))
    print_table(out)
    return out


def print_table(out):
    size, rows = out["batch"], out["paths"]
    print(f"\nW1, B = {size} (largest n = {out['n_max']}), t1 = {out['t1']:g}; reference "
          f"{out['reference_seconds']:.1f} s; warm = best of the repeated rounds")
    head = (f"{'path':<18} {'cold s':>7} {'compile':>7} {'wall s':>7} {'run s':>7} {'other':>6} "
            f"{'traj/s run':>10} {'traj/s wall':>11} {'x today':>7} {'x cold':>6} "
            f"{'x scipy':>7} {'x sc.match':>10} {'steps mean/max':>14} {'lane eff':>8} "
            f"{'chunks':>6} {'max |dp|':>8}")
    print(head)
    for name, r in rows.items():
        matched = "-" if r["x_scipy_matched"] is None else f"{r['x_scipy_matched']:.2f}"
        print(f"{name:<18} {r['cold_wall']:7.2f} {r['cold_compile']:7.2f} {r['wall']:7.2f} "
              f"{r['run']:7.2f} {r['other']:6.2f} {r['traj_per_s_run']:10.2f} "
              f"{r['traj_per_s_wall']:11.2f} {r['x_today_wall']:7.2f} {r['x_today_cold']:6.2f} "
              f"{r['x_scipy_same_tol']:7.2f} {matched:>10} "
              f"{r['mean_steps']:7.0f}/{r['max_steps']:<6.0f} {r['lane_efficiency']:8.3f} "
              f"{r['chunks']:6d} {r['max_dp']:8.1e}")
    print(f"scipy RK45 loop (unpadded, 1 BLAS thread); error of the sweep paths at most "
          f"{out['ours_max_dp']:.2g}:")
    for rung in out["scipy_ladder"]:
        print(f"  rtol {rung['rtol']:.2g}, atol {rung['atol']:.2g}: {min(rung['seconds']):7.2f} "
              f"s (best of {len(rung['seconds'])}), {size / min(rung['seconds']):.2f} traj/s, "
              f"{rung['evals']:.0f} evals/member, max |dp| {rung['max_dp']:.2g}")
    if out["scipy_matched"] is None:
        print("  no rung reached the sweep's error: x sc.match not measured")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64])
    parser.add_argument("--t1", type=float, default=4000.0)
    parser.add_argument("--paths", nargs="+", default=list(DEFAULT_PATHS),
                        help="new sweep paths, batching[:L<lanes>][:b<min bucket>][:c<chunk>]")
    parser.add_argument("--repeats", type=int, default=2, help="warm rounds (best of)")
    parser.add_argument("--json", help="write every number to this file")
    args = parser.parse_args()
    # One CPU device per core (or JAX_NUM_CPU_DEVICES), before any JAX operation.
    cores = sj.use_cpu_cores()
    for spec in args.paths:
        parse_spec(spec)
    threadpool_limits(1, user_api="blas")
    versions = {m.__name__: m.__version__ for m in (jax, diffrax, eqx, scipy, np)}
    machine = (f"{jax.devices()[0].device_kind}, {platform.processor() or platform.machine()}, "
               f"{os.cpu_count()} cores, {cores} CPU devices, Python {platform.python_version()}")
    print(f"W1 scale; {machine}; " + ", ".join(f"{k} {v}" for k, v in versions.items())
          + f"; load average {os.getloadavg()[0]:.1f} at start", flush=True)
    batches = [run_batch(size, args) for size in args.batch]
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine, versions=versions, batches=batches), f, indent=1)


if __name__ == "__main__":
    main()
