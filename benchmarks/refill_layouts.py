"""Refill lanes' layouts against each other in one process, on one CPU device (one core):
`Leaves()` (each leaf of a member's state its own array, the refill path before `Flat`)
kept as the baseline, against `Flat()` (one (L, n) state, the field's products ordered for
XLA's fast kernels), for W2 (class-level SSM) and W1 (UFM, 64 members), at several lane
counts. Each configuration compiles once; then rounds run every configuration in turn and
each keeps its fastest round (wall and process CPU seconds: CPU seconds do not count time
that other processes take from the core). Kernels per loop iteration are counted from the
compiled HLO (`ssm_jax.bench.kernels`). Each member's numbers are checked against the
baseline's (same steps; records to float32 round-off).

    python benchmarks/refill_layouts.py --w2 1024 --w1 64 --lanes 8 16 32 --rounds 5
"""

import argparse
import time

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from w1 import ATOL as W1_ATOL, RTOL as W1_RTOL, SAVES as W1_SAVES, padded_problems, w1_points
from w2_class_ssm import (
    ATOL,
    MAX_STEPS,
    RTOL,
    SAVES,
    cost_key,
    lean_metrics,
    make_builder,
    w2_configs,
)

import ssm_jax as sj
from ssm_jax.bench.kernels import loop_kernels
from ssm_jax.dynamics import refill, refill_loop

LAYOUTS = {"leaves": sj.dynamics.Leaves(), "flat": sj.dynamics.Flat()}


def w2_members(num: int):
    """W2's first `num` members in cost order, as `w2_scale.py` runs them."""
    builder, static = make_builder(10, 16)
    configs = w2_configs(num)
    order = np.argsort(cost_key(configs["ratio"], configs["power"], 6000.0, 10), kind="stable")
    params, objective = builder(*(configs[n][order] for n in ("ratio", "power", "init_scale",
                                                               "seed")))
    flow = sj.Flow(6000.0, num_saves=SAVES, rtol=RTOL, atol=ATOL, max_steps=MAX_STEPS)
    return flow, params, static, objective, lean_metrics


def w1_members(num: int, coordinates: str):
    """W1's members (UFM, square loss, padded to the largest n), in class-affine coordinates
    or in the parameters."""
    problems, _ = padded_problems(w1_points(num))
    parts = [eqx.partition(model, eqx.is_inexact_array) for model, _ in problems]
    stack = lambda *xs: jnp.stack(xs)  # noqa: E731
    params = jax.tree.map(stack, *[p for p, _ in parts])
    objective = jax.tree.map(stack, *[o for _, o in problems])
    flow = sj.Flow(4000.0, num_saves=W1_SAVES, rtol=W1_RTOL, atol=W1_ATOL,
                   coordinates=coordinates)
    return flow, params, parts[0][1], objective, (
        lambda model, objective: {"class_progress": objective.metrics(model)["class_progress"]})


def kernels(flow, params, static, objective, metrics, lanes, layout):
    """Kernels of one loop iteration, compiled as `refill_advance` compiles it."""
    state = refill.refill_start(flow, params, static, objective, metrics, num_lanes=lanes,
                                 layout=layout)
    dynamic, rest = eqx.partition(state, eqx.is_array)
    text = jax.jit(lambda d, n: eqx.filter(refill_loop.advance(eqx.combine(d, rest), n),
                                           eqx.is_array)).lower(dynamic, 1).compile().as_text()
    return loop_kernels(text)


def measure(name, members, lanes, rounds):
    """Rows for one workload: every (layout, lanes), interleaved round by round."""
    flow, params, static, objective, metrics = members
    configs = [(layout, n) for n in lanes for layout in LAYOUTS]
    runs, outs, rows = {}, {}, []
    for layout, n in configs:
        def run(layout=layout, n=n):
            with jax.default_matmul_precision(flow.precision):
                return jax.block_until_ready(refill.refill_run(
                    flow, params, static, objective, metrics, num_lanes=n,
                    layout=LAYOUTS[layout]))
        start = time.perf_counter()
        outs[layout, n] = run()
        runs[layout, n] = (run, time.perf_counter() - start)
    best = {key: [np.inf, np.inf] for key in runs}
    for _ in range(rounds):
        for key, (run, _) in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            best[key] = [min(best[key][0], time.perf_counter() - wall),
                         min(best[key][1], time.process_time() - cpu)]
    for layout, n in configs:
        out, base = outs[layout, n], outs["leaves", n]
        steps = int(np.sum(out.stats["num_steps"]))
        record = jax.tree.leaves(out.recorded)[0]
        reference = jax.tree.leaves(base.recorded)[0]
        finite = np.isfinite(reference)
        scale = np.max(np.abs(reference[finite]))
        count = kernels(flow, params, static, objective, metrics, n, LAYOUTS[layout])
        wall, cpu = best[layout, n]
        rows.append(dict(
            workload=name, layout=layout, lanes=n, wall_us=1e6 * wall / steps,
            cpu_us=1e6 * cpu / steps, first_s=runs[layout, n][1], steps=steps,
            efficiency=float(out.lane_efficiency), kernels=count.body, nested=count.nested,
            dots=sum(v for k, v in count.opcodes.items() if "dot" in k or "kCustom" in k),
            same_steps=float(np.mean(out.stats["num_steps"] == base.stats["num_steps"])),
            max_diff=float(np.max(np.abs(record[finite] - reference[finite])) / scale)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--w2", type=int, default=1024, help="W2 members (0: skip)")
    parser.add_argument("--w1", type=int, default=64, help="W1 members (0: skip)")
    parser.add_argument("--lanes", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--w1-lanes", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--w1-coordinates", nargs="+", default=["class_affine", "parameters"])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{jax.devices()[0].device_kind}, jax {jax.__version__}, diffrax "
          f"{diffrax.__version__}, equinox {eqx.__version__}; best of {args.rounds} rounds")
    rows = []
    if args.w2:
        rows += measure(f"W2 ({args.w2})", w2_members(args.w2), args.lanes, args.rounds)
    if args.w1:
        for coordinates in args.w1_coordinates:
            rows += measure(f"W1 ({args.w1}, {coordinates})",
                            w1_members(args.w1, coordinates), args.w1_lanes, args.rounds)
    base = {(r["workload"], r["lanes"]): r for r in rows if r["layout"] == "leaves"}
    first = {r["workload"]: r for r in rows[::-1] if r["layout"] == "leaves"}
    print("| workload | layout | lanes | us/member-step (wall) | (CPU) | x leaves, same lanes "
          "(CPU) | x leaves at the fewest lanes (CPU) | kernels/iteration (nested) | products "
          "| lane eff. | same steps | max diff |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        same = base[r["workload"], r["lanes"]]["cpu_us"] / r["cpu_us"]
        fewest = first[r["workload"]]["cpu_us"] / r["cpu_us"]
        print(f"| {r['workload']} | {r['layout']} | {r['lanes']} | {r['wall_us']:.2f} | "
              f"{r['cpu_us']:.2f} | {same:.2f} | {fewest:.2f} | {r['kernels']} "
              f"({r['nested']}) | {r['dots']} | {r['efficiency']:.3f} | "
              f"{r['same_steps']:.3f} | {r['max_diff']:.1e} |")


if __name__ == "__main__":
    main()
