#!/usr/bin/env python3
"""Write small structure files with ASE, and what ASE reads back from them, for halo-io's tests.

Usage: /work/venv/bin/python tools/gen_io_fixtures.py

Writes into crates/halo-io/tests/data/:
  multi.xyz          extxyz, 3 frames: energy, forces, stress, momenta (velocities), config_type
  triclinic.xyz      extxyz, triclinic cell, an extra integer and string column
  mixed_pbc.xyz      extxyz, pbc "T T F"
  molecule.xyz       extxyz, no cell
  atomic_tri.data    LAMMPS data, atom_style atomic, general cell (ASE rotates it), velocities
  charge_tri.data    LAMMPS data, atom_style charge, lower-triangular cell, charges
  direct.vasp        POSCAR, direct coordinates, velocities
  cartesian.vasp     POSCAR, Cartesian coordinates
  CONTCAR_sd         hand-written VASP CONTCAR: selective dynamics, blank line + velocities,
                     then a predictor-corrector block
  ase_read.json      for every file above: what ase.io.read(file, index=":") returns
                     (symbols, positions, cell, pbc, masses, velocities in Å/fs, charges,
                     energy, forces); the Rust tests compare halo-io's reading to it.

Everything is seeded, so re-running reproduces the same files.
"""

import json
from pathlib import Path

import ase
import ase.io
import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator

OUT = Path(__file__).resolve().parent.parent / "crates" / "halo-io" / "tests" / "data"
RNG = np.random.default_rng(20240611)

CONTCAR_SD = """\
Si3C MD restart
   1.00000000000000
     5.4300000000000002    0.0000000000000000    0.0000000000000000
     0.1000000000000000    5.4300000000000002    0.0000000000000000
     0.0000000000000000    0.2000000000000000    5.4300000000000002
   Si   C
     3     1
Selective dynamics
Direct
  0.0000000000000000  0.0000000000000000  0.0000000000000000   F   F   F
  0.2500000000000000  0.2500000000000000  0.2500000000000000   T   T   T
  0.5000000000000000  0.5000000000000000  0.0000000000000000   T   F   T
  0.7500000000000000  0.7500000000000000  0.2500000000000000   T   T   T

  0.12345678E-02 -0.23456789E-02  0.34567890E-03
 -0.11111111E-02  0.22222222E-02 -0.33333333E-02
  0.00000000E+00  0.00000000E+00  0.00000000E+00
  0.40000000E-02  0.50000000E-02 -0.60000000E-02

 1
  0.10000000E+01
"""


def random_atoms(symbols, cell, pbc=True, jitter=0.3):
    n = len(symbols)
    atoms = Atoms(symbols, cell=cell, pbc=pbc)
    frac = RNG.random((n, 3))
    if np.any(atoms.cell.array):
        atoms.set_scaled_positions(frac)
    else:
        atoms.positions = frac * 6.0
    atoms.positions += RNG.normal(scale=jitter, size=(n, 3))
    return atoms


def with_results(atoms, velocities=True):
    n = len(atoms)
    if velocities:
        atoms.set_velocities(RNG.normal(scale=0.02, size=(n, 3)))
    atoms.calc = SinglePointCalculator(
        atoms,
        energy=float(RNG.normal(-3.0 * n, 1.0)),
        forces=RNG.normal(size=(n, 3)),
        stress=RNG.normal(scale=0.01, size=6),
    )
    return atoms


def describe(atoms):
    """What ASE read, in halomd's units (velocities Å/fs)."""
    d = {
        "symbols": atoms.get_chemical_symbols(),
        "positions": atoms.positions.tolist(),
        "cell": atoms.cell.array.tolist() if atoms.cell.any() else None,
        "pbc": [bool(p) for p in atoms.pbc],
        "masses": atoms.get_masses().tolist(),
        "velocities": None,
        "charges": None,
        "energy": None,
        "forces": None,
    }
    if "momenta" in atoms.arrays:
        d["velocities"] = (atoms.get_velocities() * units.fs).tolist()
    if "initial_charges" in atoms.arrays:
        d["charges"] = atoms.get_initial_charges().tolist()
    if atoms.calc is not None:
        res = atoms.calc.results
        if "energy" in res:
            d["energy"] = float(res["energy"])
        if "forces" in res:
            d["forces"] = np.asarray(res["forces"]).tolist()
    return d


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    written = {}

    frames = []
    for k in range(3):
        a = random_atoms(["Si", "Si", "O", "O", "O", "H"], [4.5 + 0.1 * k] * 3)
        a.info["config_type"] = "bulk"
        a.info["step"] = k
        frames.append(with_results(a))
    written["multi.xyz"] = dict(images=frames, format="extxyz")

    tri = random_atoms(["Cu", "Zr", "Cu", "Al", "Zr"], [[5.1, 0.0, 0.0], [1.3, 4.9, 0.0], [-0.8, 0.6, 6.2]])
    tri.new_array("tag", np.array([3, 1, 4, 1, 5]))
    tri.new_array("label", np.array(["a", "b", "c", "d", "e"]))
    written["triclinic.xyz"] = dict(images=tri, format="extxyz")

    slab = random_atoms(["Pt", "Pt", "Pt", "O"], [[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 15.0]], pbc=[True, True, False])
    written["mixed_pbc.xyz"] = dict(images=with_results(slab, velocities=False), format="extxyz")

    mol = random_atoms(["C", "O", "O", "H", "H"], None, pbc=False)
    mol.set_velocities(RNG.normal(scale=0.02, size=(5, 3)))
    written["molecule.xyz"] = dict(images=mol, format="extxyz")

    lmp = random_atoms(["Ni", "Al", "Ni", "Ni", "Al", "Al"], [[4.2, 0.3, 0.1], [0.5, 4.4, -0.2], [0.3, 0.4, 5.0]])
    lmp.set_velocities(RNG.normal(scale=0.02, size=(6, 3)))
    written["atomic_tri.data"] = dict(
        images=lmp, format="lammps-data", atom_style="atomic", masses=True, velocities=True, units="metal"
    )

    chg = random_atoms(["Na", "Cl", "Na", "Cl"], [[5.6, 0.0, 0.0], [0.7, 5.5, 0.0], [0.4, -0.6, 5.8]])
    chg.set_initial_charges([1.0, -1.0, 0.9, -0.9])
    written["charge_tri.data"] = dict(images=chg, format="lammps-data", atom_style="charge", masses=True, units="metal")

    pos = random_atoms(["Ga", "Ga", "As", "As", "As"], [[5.6, 0.0, 0.0], [0.2, 5.7, 0.0], [0.3, 0.1, 5.9]])
    pos.set_velocities(RNG.normal(scale=0.02, size=(5, 3)))
    written["direct.vasp"] = dict(images=pos, format="vasp", direct=True)

    cart = random_atoms(["Ti", "O", "O"], [[4.6, 0.0, 0.0], [0.0, 4.6, 0.0], [0.0, 0.0, 2.95]])
    written["cartesian.vasp"] = dict(images=cart, format="vasp", direct=False)

    for name, kw in written.items():
        ase.io.write(OUT / name, **kw)
    (OUT / "CONTCAR_sd").write_text(CONTCAR_SD)

    reference = {"ase_version": ase.__version__}
    for name in [*written, "CONTCAR_sd"]:
        fmt = "vasp" if name.endswith(".vasp") or name.startswith("CONTCAR") else None
        if name.endswith(".data"):
            images = [ase.io.read(OUT / name, format="lammps-data", atom_style=written[name]["atom_style"], units="metal")]
        else:
            images = ase.io.read(OUT / name, index=":", format=fmt)
        reference[name] = [describe(a) for a in images]
    (OUT / "ase_read.json").write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {len(reference) - 1} fixtures and ase_read.json to {OUT}")


if __name__ == "__main__":
    main()
