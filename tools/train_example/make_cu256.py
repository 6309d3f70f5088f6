#!/usr/bin/env python3
"""Write examples/cu-emt/cu256.xyz: perfect 4x4x4 conventional fcc Cu (256 atoms) at EMT's a0.

Usage: python tools/train_example/make_cu256.py   (prints a0; the fit is deterministic)
"""

from pathlib import Path

from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write
from scipy.optimize import minimize_scalar

REPO = Path(__file__).resolve().parents[2]


def e_per_atom(a):
    at = bulk("Cu", "fcc", a=a, cubic=True)
    at.calc = EMT()
    return at.get_potential_energy() / len(at)


def main():
    r = minimize_scalar(e_per_atom, bounds=(3.5, 3.7), method="bounded", options={"xatol": 1e-7})
    a0 = round(float(r.x), 4)
    print(f"EMT Cu equilibrium a0 = {r.x:.6f} Å (written with a = {a0}), E = {r.fun:.6f} eV/atom")
    atoms = bulk("Cu", "fcc", a=a0, cubic=True) * (4, 4, 4)
    write(REPO / "examples/cu-emt/cu256.xyz", atoms, format="extxyz")


if __name__ == "__main__":
    main()
