#!/usr/bin/env python3
"""Generate EMT copper training data in DeePMD-kit npy format (seeded, deterministic).

Usage:
    python tools/train_example/make_data.py [--out /tmp/halomd-train/data] [--seed 20240601]

Writes one DeePMD "system" directory per (cell kind, atom count) under
``OUT/train/<name>`` and ``OUT/valid/<name>`` (about 10 % of the frames, drawn at random),
each holding ``type.raw``, ``type_map.raw`` and ``set.000/{coord,box,energy,force,virial}.npy``.

Units are DeePMD's: Å, eV, eV/Å. The virial is DeePMD's convention,
``virial = -stress * volume`` with ASE's stress (positive virial = repulsion),
flattened row major to 9 numbers.

Why the mix below: ``halomd run`` with the bundled model will visit the fcc solid from
low temperature up to near melting, at slightly different densities (NPT, compressed
starts), cells with vacancies, and may overheat into a liquid; each of those regions
gets its own trajectories.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

A0 = 3.61  # Å; starting lattice constant (EMT's own minimum is ~3.590 Å, strains cover both)
DT_FS = 2.0
FRICTION = 0.02 / units.fs  # strong coupling: trajectories are short, we want T reached fast


def strained_cell(reps: int, iso: float, shear: float, rng: np.random.Generator):
    """fcc cubic supercell with isotropic strain `iso` and random symmetric shear up to `shear`."""
    atoms = bulk("Cu", "fcc", a=A0, cubic=True) * (reps, reps, reps)
    eps = np.zeros((3, 3))
    if shear > 0:
        off = rng.uniform(-shear, shear, size=3)
        eps[0, 1] = eps[1, 0] = off[0]
        eps[0, 2] = eps[2, 0] = off[1]
        eps[1, 2] = eps[2, 1] = off[2]
    deform = (1.0 + iso) * np.eye(3) + eps
    atoms.set_cell(atoms.cell.array @ deform.T, scale_atoms=True)
    return atoms


def run_traj(atoms, temps, n_equil: int, n_frames: int, every: int, rng: np.random.Generator):
    """Langevin MD with EMT; `temps` = (T_equil, T_sample). Returns a list of frame dicts."""
    atoms = atoms.copy()
    atoms.calc = EMT()
    atoms.rattle(stdev=0.02, seed=int(rng.integers(2**31)))
    t_eq, t_s = temps
    MaxwellBoltzmannDistribution(atoms, temperature_K=t_eq, rng=rng)
    Stationary(atoms)
    dyn = Langevin(atoms, DT_FS * units.fs, temperature_K=t_eq, friction=FRICTION, rng=rng)
    dyn.run(n_equil)
    if t_s != t_eq:
        dyn.set_temperature(temperature_K=t_s)
        dyn.run(n_equil)
    frames = []
    for _ in range(n_frames):
        dyn.run(every)
        vol = atoms.get_volume()
        frames.append(
            dict(
                coord=atoms.get_positions().reshape(-1).copy(),
                box=atoms.cell.array.reshape(-1).copy(),
                energy=atoms.get_potential_energy(),
                force=atoms.get_forces().reshape(-1).copy(),
                virial=(-atoms.get_stress(voigt=False) * vol).reshape(-1).copy(),
            )
        )
    return frames


def write_system(path: Path, natoms: int, frames):
    path.mkdir(parents=True, exist_ok=True)
    (path / "type.raw").write_text("0\n" * natoms)
    (path / "type_map.raw").write_text("Cu\n")
    s = path / "set.000"
    s.mkdir(exist_ok=True)
    for key in ("coord", "box", "force", "virial"):
        np.save(s / f"{key}.npy", np.array([f[key] for f in frames], dtype=np.float64))
    np.save(s / "energy.npy", np.array([f["energy"] for f in frames], dtype=np.float64))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/halomd-train/data")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--valid-fraction", type=float, default=0.1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    t0 = time.time()

    solid_T = [100, 300, 600, 900, 1200, 1500]
    strains = [-0.04, -0.02, 0.0, 0.02, 0.04]
    systems: dict[str, list] = {"fcc32": [], "fcc108": [], "vac31": [], "vac107": [], "liq108": []}
    # (system name, supercell reps, number of vacancies, frames per trajectory, sampling stride)
    plans = [
        ("fcc32", 2, 0, solid_T, strains, 40, 8),
        ("fcc108", 3, 0, solid_T, strains, 25, 8),
        ("vac31", 2, 1, [300, 900, 1300], [-0.02, 0.0, 0.02], 30, 8),
        ("vac107", 3, 1, [300, 900, 1300], [-0.02, 0.0, 0.02], 20, 8),
    ]
    for name, reps, nvac, temps, strs, nfr, every in plans:
        for T in temps:
            for s in strs:
                # half of the trajectories get a random shear of up to 2 %
                shear = 0.02 if rng.random() < 0.5 else 0.0
                atoms = strained_cell(reps, s, shear, rng)
                for _ in range(nvac):
                    del atoms[int(rng.integers(len(atoms)))]
                systems[name] += run_traj(atoms, (T, T), 100, nfr, every, rng)
        print(f"{name}: {len(systems[name])} frames, {time.time() - t0:.0f} s", flush=True)
    # Liquid: melt at 3000 K, then sample at 1800 K (normal and 3 % expanded, liquid is less dense).
    for s in (0.0, 0.03):
        atoms = strained_cell(3, s, 0.0, rng)
        systems["liq108"] += run_traj(atoms, (3000, 1800), 400, 150, 6, rng)
    print(f"liq108: {len(systems['liq108'])} frames, {time.time() - t0:.0f} s", flush=True)

    summary = {}
    for name, frames in systems.items():
        natoms = len(frames[0]["coord"]) // 3
        idx = rng.permutation(len(frames))
        nval = max(1, int(round(args.valid_fraction * len(frames))))
        val = sorted(idx[:nval].tolist())
        tr = sorted(idx[nval:].tolist())
        write_system(out / "train" / name, natoms, [frames[i] for i in tr])
        write_system(out / "valid" / name, natoms, [frames[i] for i in val])
        summary[name] = dict(natoms=natoms, train=len(tr), valid=len(val))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
