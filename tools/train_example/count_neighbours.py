#!/usr/bin/env python3
"""Max number of neighbours within a cutoff over every frame of the generated data.

Usage: python tools/train_example/count_neighbours.py [--data /tmp/halomd-train/data] [--rcut 5.0 4.0]

`sel` (se_e2_a) and `e_sel`/`a_sel` (DPA3) must be at least these numbers, otherwise DeePMD-kit
silently drops the farthest neighbours and the energy becomes discontinuous.
"""

import argparse
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/tmp/halomd-train/data")
    ap.add_argument("--rcut", type=float, nargs="+", default=[5.0, 4.0])
    args = ap.parse_args()
    overall = {rc: 0 for rc in args.rcut}
    for sysdir in sorted(Path(args.data).glob("*/*")):
        if not (sysdir / "set.000").is_dir():
            continue
        coord = np.load(sysdir / "set.000/coord.npy")
        box = np.load(sysdir / "set.000/box.npy")
        nat = coord.shape[1] // 3
        best = {rc: 0 for rc in args.rcut}
        for c, b in zip(coord, box):
            atoms = Atoms("Cu%d" % nat, positions=c.reshape(-1, 3), cell=b.reshape(3, 3), pbc=True)
            for rc in args.rcut:
                i = neighbor_list("i", atoms, rc)
                best[rc] = max(best[rc], int(np.bincount(i, minlength=nat).max()))
        for rc in args.rcut:
            overall[rc] = max(overall[rc], best[rc])
        print(sysdir.relative_to(args.data), {f"rc={rc}": n for rc, n in best.items()})
    print("overall max:", {f"rc={rc}": n for rc, n in overall.items()})


if __name__ == "__main__":
    main()
