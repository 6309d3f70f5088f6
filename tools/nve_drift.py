#!/usr/bin/env python3
"""Drift of the conserved quantity in a halomd thermo CSV (NVE energy conservation).

    python3 tools/nve_drift.py examples/cu-emt/nve.csv [natoms]

Fits conserved(t) = a + b·t by least squares and prints the slope per atom per ps, the
largest excursion from the first value and, for scale, the standard deviation of the
kinetic energy. Plain Python: no numpy needed.
"""
import csv
import sys


def main():
    path = sys.argv[1]
    rows = list(csv.DictReader(open(path)))
    if len(rows) < 3:
        sys.exit(f"{path}: need at least 3 rows, found {len(rows)}")
    natoms = int(sys.argv[2]) if len(sys.argv) > 2 else None
    if natoms is None:
        natoms = 256
    t = [float(r["time_fs"]) / 1000.0 for r in rows]  # ps
    e = [float(r["conserved_eV"]) for r in rows]
    ke = [float(r["ke_eV"]) for r in rows]
    n = len(t)
    tm = sum(t) / n
    em = sum(e) / n
    slope = sum((a - tm) * (b - em) for a, b in zip(t, e)) / sum((a - tm) ** 2 for a in t)
    kem = sum(ke) / n
    ke_sd = (sum((k - kem) ** 2 for k in ke) / (n - 1)) ** 0.5
    excursion = max(abs(x - e[0]) for x in e)
    print(f"file            {path}")
    print(f"span            {t[0]:.3f} .. {t[-1]:.3f} ps, {n} rows, {natoms} atoms")
    print(f"drift           {slope / natoms:.3e} eV/atom/ps  ({slope:.3e} eV/ps total)")
    print(f"max |E - E0|    {excursion / natoms:.3e} eV/atom")
    print(f"KE std dev      {ke_sd / natoms:.3e} eV/atom (for scale)")


if __name__ == "__main__":
    main()
