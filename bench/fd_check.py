#!/usr/bin/env python3
"""Which engine's forces are right? Central finite differences of the energy against the
analytic forces of halomd, DeePMD `.pth` and DeePMD `.pt2`, on the benchmark inputs.

    /work/venv/bin/python bench/fd_check.py [--model dpa3_f64] [--natoms 192] [--atoms 5,100]

Needs the inputs built by deepmd_vs_halomd.py / build_inputs.py in --work. Writes
bench/results/fd_check_MODEL_NATOMS.{json,md}. Float64 models only (h = 1e-4 Å: the
truncation error is ~1e-8 eV/Å, far below the differences this is meant to find).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
HERE = Path(__file__).resolve().parent
REPO = HERE.parent

import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/halomd-bench"))
    ap.add_argument("--model", default="dpa3_f64")
    ap.add_argument("--natoms", type=int, default=192)
    ap.add_argument("--atoms", default="5,100", help="atom indices whose x and z force components are checked")
    ap.add_argument("--h", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--halomd", type=Path, default=REPO / "target" / "release" / "halomd")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    a = ap.parse_args()
    for k in ("OMP_NUM_THREADS", "DP_INTRA_OP_PARALLELISM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[k] = str(a.threads)
    os.environ["DP_INTER_OP_PARALLELISM_THREADS"] = "1"

    import torch
    from ase import Atoms
    from ase.io import write

    torch.set_num_threads(a.threads)
    with contextlib.redirect_stdout(io.StringIO()):
        from deepmd.infer import DeepPot

    s = np.load(a.work / "structures" / f"water_{a.natoms}.npz")
    coord, cell, atype = s["coord"], s["cell"], s["atype"]
    comps = [(int(i), k) for i in a.atoms.split(",") for k in (0, 2)]
    mdir = a.work / "models"

    def deepmd_engine(path):
        dp = DeepPot(str(path))

        def ev(x):
            e, f, _ = dp.eval(x[None], cell.reshape(1, 9), atype, atomic=False)[:3]
            return float(np.asarray(e).ravel()[0]), np.asarray(f).reshape(-1, 3)

        return ev

    tmp = Path(tempfile.mkdtemp(prefix="fdcheck", dir=a.work))

    def halomd_ev(x):
        p = tmp / "s.extxyz"
        write(str(p), Atoms(symbols=["OH"[t] for t in atype], positions=x, cell=cell, pbc=True), format="extxyz")
        r = subprocess.run([str(a.halomd), "eval", "--model", str(mdir / f"{a.model}.dp"), "--no-atom-virial",
                            "--format", "json", str(p)], capture_output=True, text=True, check=True)
        j = json.loads(r.stdout)
        return float(j["energy"]), np.asarray(j["forces"], dtype=float).reshape(-1, 3)

    engines = {"halomd": halomd_ev}
    for fmt in ("pth", "pt2"):
        if (mdir / f"{a.model}.{fmt}").exists():
            engines[fmt] = deepmd_engine(mdir / f"{a.model}.{fmt}")
    res: dict = {"model": a.model, "natoms": a.natoms, "h": a.h, "components": [], "engines": list(engines)}
    for name, ev in engines.items():
        print(f"[fd_check] {name}", file=sys.stderr, flush=True)
        e0, f0 = ev(coord)
        for i, k in comps:
            xp, xm = coord.copy(), coord.copy()
            xp[i, k] += a.h
            xm[i, k] -= a.h
            fd = -(ev(xp)[0] - ev(xm)[0]) / (2 * a.h)
            res["components"].append({"engine": name, "atom": i, "axis": "xyz"[k], "analytic": float(f0[i, k]),
                                      "finite_difference": fd, "abs_diff": abs(float(f0[i, k]) - fd)})
        res.setdefault("energy", {})[name] = e0
    a.out.mkdir(parents=True, exist_ok=True)
    stem = a.out / f"fd_check_{a.model}_{a.natoms}"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1))
    lines = [f"# Finite-difference force check: {a.model}, {a.natoms} atoms (h = {a.h} Å)\n",
             f"Command: `/work/venv/bin/python bench/fd_check.py {' '.join(sys.argv[1:])}`\n",
             "| engine | atom | axis | analytic F (eV/Å) | −ΔE/Δx (eV/Å) | abs diff |", "|---|---|---|---|---|---|"]
    for c in res["components"]:
        lines.append(f"| {c['engine']} | {c['atom']} | {c['axis']} | {c['analytic']:.10f} | "
                     f"{c['finite_difference']:.10f} | {c['abs_diff']:.1e} |")
    lines.append("\nEnergies (eV): " + ", ".join(f"{k} {v:.10f}" for k, v in res["energy"].items()))
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
