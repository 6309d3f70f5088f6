"""Seeded test structures for the DeePMD reference fixtures.

Every structure is a plain dict:
  name, coord [N,3] (Angstrom), atype [N] (type indices, valid for any model
  with ntypes > max(atype)), cell [3,3] rows = lattice vectors a, b, c (or None),
  pbc [3] bools, and deepmd_cell: the cell actually handed to DeePMD (None for a
  cluster; for mixed PBC a cell whose non-periodic vector is replaced by a long
  vacuum vector, because DeePMD only knows "fully periodic" or "no PBC").
"""

from __future__ import annotations

import itertools

import numpy as np

# Minimum interatomic distance (Angstrom, over all periodic images) enforced for
# every structure, so no structure has unphysically close atoms.
DMIN = 1.5

# Length of the vacuum vector used to emulate a non-periodic axis for DeePMD.
# It must exceed (extent along that axis) + 2 * rcut for every model here
# (extent <= 7 A, rcut <= 5 A), so no atom ever sees an image along that axis.
MIXED_PBC_VACUUM_LENGTH = 40.0


def face_distances(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell (volume / area)."""
    a, b, c = cell
    vol = abs(np.dot(a, np.cross(b, c)))
    return np.array(
        [
            vol / np.linalg.norm(np.cross(b, c)),
            vol / np.linalg.norm(np.cross(c, a)),
            vol / np.linalg.norm(np.cross(a, b)),
        ]
    )


def image_shifts(cell: np.ndarray | None, pbc, rcut: float) -> np.ndarray:
    """All integer shifts needed to find every neighbour within rcut."""
    if cell is None:
        return np.zeros((1, 3), dtype=int)
    nb = np.ceil(rcut / face_distances(cell)).astype(int)
    ranges = [range(-n, n + 1) if p else range(0, 1) for n, p in zip(nb, pbc)]
    return np.array(list(itertools.product(*ranges)), dtype=int)


def neighbor_distances(coord, cell, pbc, rcut):
    """For each atom: sorted list of (distance, neighbour local index) within rcut.

    Includes periodic images (also images of the atom itself), excludes the atom
    itself at zero shift.
    """
    coord = np.asarray(coord, dtype=np.float64)
    n = len(coord)
    shifts = image_shifts(cell, pbc, rcut)
    out = []
    for i in range(n):
        lst = []
        for s in shifts:
            off = np.zeros(3) if cell is None else s @ cell
            d = np.linalg.norm(coord + off - coord[i], axis=1)
            for j in range(n):
                if j == i and not s.any():
                    continue
                if d[j] < rcut:
                    lst.append((float(d[j]), j))
        lst.sort()
        out.append(lst)
    return out


def min_distance(coord, cell, pbc) -> float:
    nd = neighbor_distances(coord, cell, pbc, 4.0)
    return min((lst[0][0] for lst in nd if lst), default=np.inf)


def _random_packing(rng, n, cell, pbc, lo, hi, dmin):
    """Random sequential placement in the parallelepiped lo..hi (fractional)."""
    pts: list[np.ndarray] = []
    tries = 0
    while len(pts) < n:
        tries += 1
        if tries > 200000:
            raise RuntimeError("packing failed")
        f = rng.uniform(lo, hi)
        x = f @ cell
        ok = True
        for s in image_shifts(cell, pbc, dmin):
            off = s @ cell
            for p in pts:
                if np.linalg.norm(x - (p + off)) < dmin:
                    ok = False
                    break
            if not ok:
                break
        if ok:
            pts.append(x)
    return np.array(pts)


def _assign_types(rng, n, types):
    """Random types with every listed type present at least twice."""
    base = list(types) * 2
    rest = list(rng.choice(types, size=n - len(base)))
    at = np.array(base + rest)
    rng.shuffle(at)
    return at


def build_structures(seed: int = 20240611) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    out: dict[str, dict] = {}

    # 1. Periodic cubic: jittered fcc, 2x2x2 conventional cells, 32 atoms, 3 species.
    a0 = 4.15
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    sites = np.array(
        [(np.array(ijk) + b) * a0 for ijk in itertools.product(range(2), repeat=3) for b in basis]
    )
    cell = np.eye(3) * 2 * a0
    coord = sites + rng.normal(0.0, 0.14, sites.shape)
    out["cubic"] = dict(
        coord=coord,
        atype=_assign_types(rng, len(coord), [0, 1, 2]),
        cell=cell,
        pbc=[True, True, True],
        description="periodic cubic cell 8.3 A, jittered fcc (a=4.15 A), 32 atoms, types {0,1,2}",
    )

    # 2. Periodic triclinic (skewed), 24 atoms, 4 species, jittered 2x3x4 grid in
    #    fractional space; three atoms are then moved outside the cell by whole
    #    lattice vectors (an engine must wrap or use minimum images itself).
    cell = np.array([[7.4, 0.0, 0.0], [2.3, 7.1, 0.0], [-1.6, 1.9, 7.6]])
    grid = np.array(
        [((i + 0.5) / 2, (j + 0.5) / 3, (k + 0.5) / 4) for i in range(2) for j in range(3) for k in range(4)]
    )
    coord = grid @ cell + rng.normal(0.0, 0.25, (len(grid), 3))
    coord[3] += cell[0]
    coord[10] -= cell[1]
    coord[17] += cell[2] - cell[0]
    out["triclinic"] = dict(
        coord=coord,
        atype=_assign_types(rng, len(coord), [0, 1, 2, 3]),
        cell=cell,
        pbc=[True, True, True],
        description="periodic triclinic cell, 24 atoms, types {0,1,2,3}; atoms 3, 10, 17 lie outside the cell",
    )

    # 3. Small cell: face distance along a ~2.44 A < rcut/2, so 2-3 images per side
    #    along a are needed; 8 atoms, 2 species.
    cell = np.array([[2.45, 0.0, 0.0], [0.5, 7.3, 0.0], [-0.3, 0.8, 7.4]])
    coord = _random_packing(rng, 8, cell, [True] * 3, [0, 0, 0], [1, 1, 1], 1.75)
    out["smallcell"] = dict(
        coord=coord,
        atype=_assign_types(rng, len(coord), [0, 1]),
        cell=cell,
        pbc=[True, True, True],
        description="periodic cell thinner than rcut (face distance 2.44 A along a), 8 atoms, types {0,1}",
    )

    # 4. Mixed PBC slab: periodic in a, b (skewed in-plane), open along c.
    #    The user-facing c is short (10 A) on purpose: treating c as periodic
    #    would create spurious neighbours (vacuum 4 A < rcut).
    cell = np.array([[8.2, 0.0, 0.0], [-1.9, 7.8, 0.0], [0.0, 0.0, 10.0]])
    coord = _random_packing(rng, 20, cell, [True, True, False], [0, 0, 0.25], [1, 1, 0.85], 1.9)
    dcell = cell.copy()
    dcell[2] = [0.0, 0.0, MIXED_PBC_VACUUM_LENGTH]
    out["slab"] = dict(
        coord=coord,
        atype=_assign_types(rng, len(coord), [0, 1, 2]),
        cell=cell,
        pbc=[True, True, False],
        deepmd_cell=dcell,
        description=(
            "mixed PBC slab (pbc T T F), 20 atoms, types {0,1,2}, z in [2.5, 8.5]; "
            "DeePMD evaluated with c replaced by (0,0,40)"
        ),
    )

    # 5. Non-periodic cluster centred at the origin, 14 atoms, types {0,1,3}.
    pts: list[np.ndarray] = []
    while len(pts) < 14:
        x = rng.uniform(-3.8, 3.8, 3)
        if np.linalg.norm(x) > 3.8:
            continue
        if all(np.linalg.norm(x - p) >= 1.8 for p in pts):
            pts.append(x)
    coord = np.array(pts)
    out["cluster"] = dict(
        coord=coord,
        atype=_assign_types(rng, len(coord), [0, 1, 3]),
        cell=None,
        pbc=[False, False, False],
        description="non-periodic cluster, 14 atoms, types {0,1,3} (type 2 absent), coordinates around the origin",
    )

    for name, s in out.items():
        s["name"] = name
        s["atype"] = np.asarray(s["atype"], dtype=int)
        s.setdefault("deepmd_cell", s["cell"])
        md = min_distance(s["coord"], s["cell"], s["pbc"])
        if md < DMIN:
            raise RuntimeError(f"structure {name}: min distance {md:.3f} < {DMIN}")
        s["min_distance"] = md
    return out


if __name__ == "__main__":
    for name, s in build_structures().items():
        nd = neighbor_distances(s["coord"], s["cell"], s["pbc"], 5.0)
        cnt = [len(x) for x in nd]
        nd4 = neighbor_distances(s["coord"], s["cell"], s["pbc"], 4.0)
        cnt4 = [len(x) for x in nd4]
        print(name, len(s["coord"]), "dmin %.3f" % s["min_distance"], "nn<5:", min(cnt), max(cnt), "nn<4:", min(cnt4), max(cnt4))
