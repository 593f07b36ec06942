"""benchmarks/accelerator.py, the prepared GPU run, keeps working: its dry run (tiny sizes, on
the CPU) writes every section, each with numbers or the reason it has none."""

import json
import math
from pathlib import Path
import subprocess
import sys

import pytest

# A minute and more of compilation for a script whose real runs are on a GPU.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def numbers(row: dict, *names) -> bool:
    return all(isinstance(row.get(n), int | float) and math.isfinite(row[n]) for n in names)


def test_dry_run_writes_every_section(tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/accelerator.py", "--out", str(tmp_path),
                           "--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "accelerator.log").read_text().startswith("accelerator.py: [")
    sections = json.loads((tmp_path / "accelerator.json").read_text())["sections"]
    assert list(sections) == ["environment", "smoke", "w2", "w1", "networks", "precision"]
    failed = {name: s.get("traceback") for name, s in sections.items() if s["status"] != "ok"}
    assert not failed, failed

    env = sections["environment"]
    assert env["dry_run"] and env["devices"] and "jax" in env["versions"]
    smoke = sections["smoke"]
    assert "pytest" in smoke["command"] and smoke["float32"]
    assert smoke["float64"].get("reason") or smoke["float64"]["counts"]

    w2 = sections["w2"]
    ran = {r["batching"] for r in w2["rows"] if numbers(r, "traj_per_s", "us_per_member_step",
                                                          "compile_s")}
    assert ran | {s["path"] for s in w2["skipped"]} == set(w2["paths"])
    assert len(w2["paths"]) == 5 and "naive" in ran and "auto" in ran
    assert w2["checks"] and all(c["steps"] <= 1 and c["loss"] < 1e-5 for c in w2["checks"])

    w1 = sections["w1"]
    assert w1["reference_members"] >= 1
    for name in ("sweep, parameters", "sweep, class_affine"):
        assert numbers(w1["paths"][name], "wall", "compile", "max_dp", "traj_per_s_wall")
        assert w1["paths"][name]["max_dp"] < 1e-3
    assert all(numbers(r, "traj_per_s", "max_dp") or r["reason"]
               for r in w1["paths"]["naive jax.vmap(diffeqsolve)"])
    assert "torchdiffeq dopri5" in w1["paths"] or w1["skipped"]["torchdiffeq"]

    networks = sections["networks"]
    assert networks.get("reason") or all(numbers(networks[n], "wall_s")
                                         for n in ("reweighting", "importance"))
    precision = sections["precision"]
    assert all(numbers(precision[p], "mean_steps", "wall_s") for p in ("highest", "default"))
    assert numbers(precision["default_vs_highest"], "max_dloss_over_loss0")
