#!/usr/bin/env python3
"""Check the bundled example models against EMT and write the Rust parity fixture.

Usage:
    python tools/train_example/check.py [--models examples/cu-emt/cu_se_e2_a.dp ...]
        [--out examples/cu-emt/reference.json] [--nve-steps 500]

For every bundled ``.dp`` model:
  * converts it to TorchScript (``dp convert-backend x.dp x.pth``, in /tmp/halomd-train/check)
    and evaluates it with ``deepmd.infer.DeepPot`` (PyTorch backend), and also with the
    ``.dp`` itself (numpy ``deepmd.dpmodel`` backend; energies only, it has no autodiff forces);
  * compares energy / forces / virial with EMT on two structures:
      ``rattled256``: examples/cu-emt/cu256.xyz with a seeded 0.05 Å Gaussian rattle;
      ``hot108``:     a 3x3x3 fcc cell after 1 ps of seeded 1200 K Langevin MD with EMT;
  * finds the model's own equilibrium fcc lattice constant;
  * runs 1 ps of NVE (velocity Verlet, dt = 2 fs) on the 108-atom cell started from a 600 K
    Maxwell-Boltzmann distribution through ``deepmd.calculator.DP`` and reports the energy drift.

``reference.json`` holds the structures once (positions, cell, pbc, types) and, per model and
structure, DeePMD-kit's (PyTorch backend) energy [eV], forces [N][3] [eV/Å] and virial [9]
(row major, DeePMD sign: -stress*volume) [eV]; all floats are written with 17 significant digits.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from ase import units  # noqa: E402
from ase.build import bulk  # noqa: E402
from ase.calculators.emt import EMT  # noqa: E402
from ase.io import read  # noqa: E402
from ase.md.langevin import Langevin  # noqa: E402
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WORK = Path("/tmp/halomd-train/check")
SEED = 7


def structures(a0: float):
    """The two reference structures (deterministic)."""
    rng = np.random.default_rng(SEED)
    s256 = read(REPO / "examples/cu-emt/cu256.xyz")
    s256.positions += rng.normal(scale=0.05, size=s256.positions.shape)
    hot = bulk("Cu", "fcc", a=a0, cubic=True) * (3, 3, 3)
    hot.calc = EMT()
    MaxwellBoltzmannDistribution(hot, temperature_K=1200, rng=rng)
    Stationary(hot)
    Langevin(hot, 2 * units.fs, temperature_K=1200, friction=0.02 / units.fs, rng=rng).run(500)
    hot.calc = None
    hot.wrap()
    return {"rattled256": s256, "hot108": hot}


def emt_eval(atoms):
    a = atoms.copy()
    a.calc = EMT()
    e = a.get_potential_energy()
    f = a.get_forces()
    v = -a.get_stress(voigt=False) * a.get_volume()
    return e, f, v.reshape(9)


def dp_eval(dp, atoms):
    e, f, v = dp.eval(
        atoms.get_positions().reshape(1, -1),
        atoms.cell.array.reshape(1, 9),
        [0] * len(atoms),
    )[:3]
    return float(e.reshape(())), f.reshape(-1, 3), v.reshape(9)


def model_a0(dp):
    from scipy.optimize import minimize_scalar

    def e(a):
        at = bulk("Cu", "fcc", a=a, cubic=True) * (2, 2, 2)
        return dp_eval(dp, at)[0] / len(at)

    r = minimize_scalar(e, bounds=(3.45, 3.75), method="bounded", options={"xatol": 1e-6})
    return float(r.x), float(r.fun)


def nve_drift(pth: Path, a0: float, steps: int):
    """Total-energy drift of 108-atom NVE at T0 = 600 K, dt = 2 fs, through deepmd's ASE calculator."""
    from deepmd.calculator import DP

    atoms = bulk("Cu", "fcc", a=a0, cubic=True) * (3, 3, 3)
    atoms.calc = DP(model=str(pth))
    rng = np.random.default_rng(SEED + 1)
    MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=rng)
    Stationary(atoms)
    dyn = VelocityVerlet(atoms, 2 * units.fs)
    t, etot, temp = [], [], []

    def rec():
        t.append(dyn.get_time() / (1000 * units.fs))  # ps
        etot.append(atoms.get_total_energy() / len(atoms))
        temp.append(atoms.get_temperature())

    dyn.attach(rec, interval=1)
    t0 = time.time()
    dyn.run(steps)
    wall = time.time() - t0
    t, etot = np.array(t), np.array(etot)
    slope = np.polyfit(t, etot, 1)[0]
    return {
        "steps": steps,
        "dt_fs": 2.0,
        "T0_K": 600.0,
        "T_final_K": float(temp[-1]),
        "T_mean_K": float(np.mean(temp)),
        "drift_meV_per_atom_per_ps": float(slope * 1000),
        "max_abs_dev_meV_per_atom": float(np.max(np.abs(etot - etot[0])) * 1000),
        "std_meV_per_atom": float(np.std(etot) * 1000),
        "wall_s": wall,
    }


def rnd(x):
    """Round-trip-exact floats (Python's repr is shortest round-trip, i.e. <= 17 digits)."""
    return np.asarray(x, dtype=np.float64).tolist()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=None)
    ap.add_argument("--out", default=str(REPO / "examples/cu-emt/reference.json"))
    ap.add_argument("--nve-steps", type=int, default=500)
    ap.add_argument("--a0", type=float, default=None, help="EMT lattice constant (default: fit)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from deepmd.infer import DeepPot

    models = args.models or [
        str(p) for p in (REPO / "examples/cu-emt/cu_se_e2_a.dp", REPO / "examples/cu-emt/cu_dpa3.dp") if p.exists()
    ]
    WORK.mkdir(parents=True, exist_ok=True)

    if args.a0 is None:
        from scipy.optimize import minimize_scalar

        def e_emt(a):
            at = bulk("Cu", "fcc", a=a, cubic=True)
            at.calc = EMT()
            return at.get_potential_energy() / len(at)

        a0 = float(minimize_scalar(e_emt, bounds=(3.5, 3.7), method="bounded", options={"xatol": 1e-7}).x)
    else:
        a0 = args.a0
    print(f"EMT a0 = {a0:.5f} Å")
    structs = structures(a0)
    ref = {
        "_comment": "DeePMD-kit 3.2.0 (PyTorch backend) reference for halomd parity tests; "
        "generated by tools/train_example/check.py. Units: Å, eV, eV/Å; virial = -stress*volume, row major.",
        "emt_a0": a0,
        "structures": {
            k: {
                "positions": rnd(s.get_positions()),
                "cell": rnd(s.cell.array),
                "pbc": [bool(p) for p in s.pbc],
                "types": [0] * len(s),
                "type_map": ["Cu"],
            }
            for k, s in structs.items()
        },
        "models": {},
    }
    report = {"emt_a0": a0, "models": {}}
    for m in models:
        m = Path(m)
        name = m.stem
        pth = WORK / f"{name}.pth"
        subprocess.run([str(Path(sys.executable).parent / "dp"), "convert-backend", str(m), str(pth)], check=True)
        dp_pt = DeepPot(str(pth))
        dp_np = DeepPot(str(m))
        rep = {"file": m.name, "bytes": m.stat().st_size, "rcut": dp_pt.get_rcut()}
        res = {}
        for sname, s in structs.items():
            e, f, v = dp_eval(dp_pt, s)
            e2, f2, _ = dp_eval(dp_np, s)
            ee, fe, ve = emt_eval(s)
            n = len(s)
            res[sname] = {"energy": e, "forces": rnd(f), "virial": rnd(v)}
            rep[sname] = {
                "natoms": n,
                "E_dp_eV": e,
                "E_emt_eV": ee,
                "dE_meV_per_atom": (e - ee) / n * 1000,
                "F_rmse_meV_per_A": float(np.sqrt(np.mean((f - fe) ** 2)) * 1000),
                "F_max_err_meV_per_A": float(np.max(np.abs(f - fe)) * 1000),
                "F_rms_emt_meV_per_A": float(np.sqrt(np.mean(fe**2)) * 1000),
                "V_rmse_meV_per_atom": float(np.sqrt(np.mean((v - ve) ** 2)) / n * 1000),
                # The numpy backend has no autodiff: it returns NaN forces/virials, so only the
                # energy can be compared; that still checks every weight and statistic in the .dp.
                "E_numpy_backend_minus_E_pt_eV": e2 - e,
                "numpy_backend_forces_available": bool(np.all(np.isfinite(f2))),
            }
            print(name, sname, json.dumps(rep[sname]))
        ref["models"][name] = {"file": m.name, "results": res}
        rep["model_a0"], rep["model_e0_eV_per_atom"] = model_a0(dp_pt)
        print(name, "model a0", rep["model_a0"])
        rep["nve"] = nve_drift(pth, a0, args.nve_steps)
        print(name, "NVE", json.dumps(rep["nve"]))
        report["models"][name] = rep
    Path(args.out).write_text(json.dumps(ref, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes)")
    (WORK / "check_report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
