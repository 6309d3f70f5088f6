#!/usr/bin/env python3
"""Writes the peer fixtures of halo-nlist's tests (crates/halo-nlist/tests/data/):

- ase_neighbors.json: per-atom neighbour counts (and distance sums) from
  ase.neighborlist.neighbor_list, compared by the `ase_peer` test. Structures are rattled so that
  no distance falls on the cutoff (ASE keeps d < cutoff, halo-nlist and DeePMD-kit d <= cutoff).
- deepmd_nlist.json: DeePMD-kit's dense nlist (deepmd.dpmodel.utils.nlist.
  extend_input_and_build_neighbor_list, typed and mixed), every entry written as the owner atom
  and lattice shift of the extended atom it points to, compared by the `deepmd_peer` test. The
  cells are wider than the cutoff so no atom sees its own images: DeePMD-kit's argsort orders
  equal distances arbitrarily, and with random positions nothing else ties.

Run with the project venv:  /work/venv/bin/python tools/gen_nlist_fixture.py
"""

import json
import pathlib

import ase
import numpy as np
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.neighborlist import neighbor_list

DATA = pathlib.Path(__file__).resolve().parents[1] / "crates/halo-nlist/tests/data"
OUT = DATA / "ase_neighbors.json"
OUT_DEEPMD = DATA / "deepmd_nlist.json"


def fcc_bulk():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 3, 3))
    atoms.rattle(stdev=0.05, seed=1)
    return "fcc_cu_bulk", atoms, 5.0


def skewed_thin():
    # Strongly skewed cell whose face distances (1.07, 1.49, 1.8 Å) are far below the cutoff,
    # with one atom outside the cell and one far outside, to need several image layers.
    cell = np.array([[3.0, 0.0, 0.0], [2.7, 2.0, 0.0], [-1.9, 1.6, 1.8]])
    frac = np.array([[0.1, 0.2, 0.3], [0.6, 0.5, 0.9], [1.2, -0.3, 0.5], [-1.4, 2.2, 0.1]])
    atoms = Atoms("CuAgAu" + "Pt", scaled_positions=frac, cell=cell, pbc=True)
    return "skewed_thin_cell", atoms, 4.5


def slab_mixed():
    atoms = fcc111("Pt", size=(3, 3, 3), vacuum=6.0)
    atoms.pbc = (True, True, False)
    atoms.rattle(stdev=0.05, seed=2)
    return "pt111_slab_pbc_TTF", atoms, 6.0


def mixed_skewed():
    rng = np.random.default_rng(3)
    cell = np.array([[5.0, 0.0, 0.0], [-3.1, 4.2, 0.0], [1.2, -2.0, 3.3]])
    frac = rng.uniform(-0.2, 1.2, size=(24, 3))
    atoms = Atoms("H24", scaled_positions=frac, cell=cell, pbc=(True, False, True))
    return "random_triclinic_pbc_TFT", atoms, 5.5


def molecule_free():
    atoms = molecule("C60")
    atoms.rattle(stdev=0.02, seed=4)
    return "c60_no_cell", atoms, 3.0


def record(name, atoms, cutoff):
    i, d = neighbor_list("id", atoms, cutoff, self_interaction=False)
    n = len(atoms)
    counts = np.bincount(i, minlength=n)
    dist_sum = np.bincount(i, weights=d, minlength=n)
    has_cell = bool(atoms.cell.rank == 3)
    return {
        "name": name,
        "cutoff": cutoff,
        "pbc": [bool(p) for p in atoms.pbc],
        "cell": atoms.cell.array.tolist() if has_cell else None,
        "positions": atoms.positions.tolist(),
        "npairs": int(len(i)),
        "counts": counts.tolist(),
        "dist_sum": [round(float(x), 10) for x in dist_sum],
    }


def deepmd_case(name, positions, cell, types, rcut, sel, mixed_sel):
    from deepmd.dpmodel.utils.nlist import extend_input_and_build_neighbor_list

    n = len(positions)
    box = None if cell is None else cell.reshape(1, 9)
    out = {
        "name": name,
        "cutoff": rcut,
        "cell": None if cell is None else cell.tolist(),
        "positions": positions.tolist(),
        "types": types.tolist(),
        "sel": sel,
        "mixed_sel": mixed_sel,
    }
    for key, s, mixed in (("typed", sel, False), ("mixed", [mixed_sel], True)):
        ext, _, mapping, nlist = extend_input_and_build_neighbor_list(
            positions.reshape(1, -1), types.reshape(1, -1), rcut, s, mixed_types=mixed, box=box
        )
        ext, mapping, nlist = ext[0], mapping[0], nlist[0]
        inv = None if cell is None else np.linalg.inv(cell)
        rows = []
        for i in range(n):
            row = []
            for e in nlist[i]:
                if e < 0:
                    row.append(None)
                    continue
                owner = int(mapping[e])
                shift = [0, 0, 0] if inv is None else np.rint((ext[e] - positions[owner]) @ inv).astype(int).tolist()
                row.append([owner] + shift)
            rows.append(row)
        out[key] = rows
    return out


def deepmd_cases():
    rng = np.random.default_rng(5)
    cell = np.array([[9.0, 0.0, 0.0], [2.0, 8.5, 0.0], [-1.5, 1.2, 8.8]])
    frac = rng.uniform(0.0, 1.0, size=(40, 3))
    periodic = deepmd_case(
        "triclinic_periodic", frac @ cell, cell, rng.integers(0, 3, 40), 4.0, [3, 5, 4], 10
    )
    cluster = deepmd_case(
        "cluster_no_cell", rng.uniform(0.0, 8.0, size=(30, 3)), None, rng.integers(0, 2, 30), 3.5, [4, 6], 7
    )
    return [periodic, cluster]


def main():
    structures = [record(*make()) for make in (fcc_bulk, skewed_thin, slab_mixed, mixed_skewed, molecule_free)]
    out = {
        "generator": f"tools/gen_nlist_fixture.py with ase {ase.__version__} "
        "(ase.neighborlist.neighbor_list, self_interaction=False)",
        "structures": structures,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    for s in structures:
        print(f"{s['name']}: {len(s['counts'])} atoms, {s['npairs']} pairs, cutoff {s['cutoff']}")

    import deepmd

    cases = deepmd_cases()
    OUT_DEEPMD.write_text(
        json.dumps(
            {
                "generator": f"tools/gen_nlist_fixture.py with deepmd-kit {deepmd.__version__} "
                "(deepmd.dpmodel.utils.nlist.extend_input_and_build_neighbor_list)",
                "cases": cases,
            },
            separators=(",", ":"),
        )
        + "\n"
    )
    for c in cases:
        print(f"{c['name']}: {len(c['types'])} atoms, deepmd nlist typed {c['sel']} mixed {c['mixed_sel']}")


if __name__ == "__main__":
    main()
