"""Trajectories per second on workload W1, ssm_jax's sweep against the obvious baselines,
all measured in the same run, compile time excluded (each path is warmed up first).

W1: UFM, square loss, k = 10, d = 32, n_min = 10, rho = 0.5, R ~ U[1, 100] (ragged n, padded to
the largest), gamma ~ U[0, 1], Tsit5 with rtol 1e-4 and atol 1e-6, 100 saves on [0, t1].

    python benchmarks/sweep_throughput.py --batch 64 [--t1 4000]

Paths:
- loop:        a Python loop of single jitted solves (`gradient_flow`, one compilation)
- naive vmap:  `jax.vmap(diffrax.diffeqsolve)` written the obvious way (RMS-norm PID)
- sweep map:   `ssm_jax.sweep`, batching=Map() (lax.map inside one call; the CPU default)
- sweep vmap:  `ssm_jax.sweep`, batching=Vmap(), members ordered by predicted step count
"""

import argparse
import platform

import jax
import numpy as np
from w1 import ATOL, RTOL, SAVES, make_problem, naive_vmap, padded_problems, timed, w1_points

import ssm_jax as sj
from ssm_jax.sweeps.problems import predicted_steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--t1", type=float, default=4000.0)
    args = parser.parse_args()
    points = w1_points(args.batch)
    problems, n_max = padded_problems(points)
    ts = sj.save_times(args.t1, SAVES)
    results = {}

    def loop():
        return [sj.gradient_flow(m, o, ts=ts, rtol=RTOL, atol=ATOL).metrics["class_progress"]
                for m, o in problems]

    results["loop"] = timed(loop)
    results["naive vmap"] = timed(naive_vmap(problems, ts), warmup=False)  # compiled ahead

    grid = sj.Grid(member=np.arange(args.batch))
    member_problem = lambda member: make_problem(**points[member])  # noqa: E731
    flow = sj.Flow(args.t1, num_saves=SAVES, rtol=RTOL, atol=ATOL)
    key = lambda member: predicted_steps(t1=args.t1, **points[member])  # noqa: E731
    for name, kwargs in (("sweep map", dict(batching=sj.sweeps.Map(), chunk_size=args.batch)),
                         ("sweep vmap", dict(batching=sj.sweeps.Vmap(),
                                             chunk_size=min(args.batch, 64),
                                             order_by=key))):
        results[name] = timed(lambda kw=kwargs: sj.sweep(member_problem, grid, dynamics=flow,
                                                         pad_to=n_max, **kw))

    reference = np.stack(results["loop"][1])
    naive_steps = np.asarray(results["naive vmap"][1][1])
    print(f"W1, B = {args.batch}, t1 = {args.t1}, {jax.devices()[0].device_kind}, "
          f"{platform.processor() or platform.machine()}, jax {jax.__version__}")
    print(f"naive vmap lockstep waste: {1 - naive_steps.mean() / naive_steps.max():.2f}")
    print(f"{'path':<12} {'s':>8} {'traj/s':>8} {'x loop':>7} {'x naive':>8} {'max |dp|':>9}")
    for name, (seconds, out) in results.items():
        if name == "loop":
            progress = reference
        elif name == "naive vmap":
            progress = np.asarray(out[0])
        else:
            progress = out.class_progress.transpose("member", "time", "cls").values
        error = np.max(np.abs(progress - reference))
        print(f"{name:<12} {seconds:8.2f} {args.batch / seconds:8.1f} "
              f"{results['loop'][0] / seconds:7.2f} {results['naive vmap'][0] / seconds:8.2f} "
              f"{error:9.1e}")


if __name__ == "__main__":
    main()
