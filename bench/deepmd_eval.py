#!/usr/bin/env python3
"""Time DeePMD-kit's `DeepPot.eval` (energy + forces + virial) on one structure.

One process per measurement, started by `deepmd_vs_halomd.py` with the thread environment
(OMP_NUM_THREADS, MKL_NUM_THREADS, DP_INTRA_OP_PARALLELISM_THREADS,
DP_INTER_OP_PARALLELISM_THREADS) already set, under an address-space limit. Writes one JSON
object to --out: the per-evaluation wall times, the energy, VmRSS after loading the model
(`rss_loaded_mb`) and this process's own VmHWM (`peak_rss_mb`); the driver also measures the
peak RSS from outside (wait4). If the model cannot allocate memory it writes
`status: "OOM"`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
import traceback

sys.dont_write_bytecode = True


def _status_kib(key: str) -> int | None:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def _mb(key: str) -> float | None:
    k = _status_kib(key)
    return None if k is None else k / 1024.0


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return any(s in text for s in ("can't allocate memory", "cannot allocate memory", "out of memory",
                                   "std::bad_alloc", "failed to allocate"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--structure", required=True, help=".npz with coord, atype, cell")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--min-evals", type=int, default=3)
    ap.add_argument("--max-evals", type=int, default=50)
    ap.add_argument("--min-time", type=float, default=5.0, help="timed seconds to collect at least")
    ap.add_argument("--max-timed", type=float, default=60.0,
                    help="stop after this many timed seconds once 2 evaluations are in")
    ap.add_argument("--slow-first", type=float, default=10.0,
                    help="if the first evaluation takes longer than this, warm up only once")
    ap.add_argument("--dump", help="write energy, forces and virial of the last evaluation (.npz)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    res: dict = {"engine": "deepmd", "model": args.model, "threads": args.threads, "status": "ok"}
    t_start = time.perf_counter()
    try:
        import numpy as np
        import torch

        torch.set_num_threads(args.threads)
        with contextlib.redirect_stdout(io.StringIO()):
            from deepmd.infer import DeepPot

        s = np.load(args.structure)
        coord = s["coord"].reshape(1, -1, 3).astype(np.float64)
        cell = s["cell"].reshape(1, 9).astype(np.float64)
        atype = s["atype"].astype(np.int64)
        res["natoms"] = int(len(atype))
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            dp = DeepPot(args.model)
        res["load_s"] = time.perf_counter() - t0
        res["rss_loaded_mb"] = _mb("VmRSS")
        res["torch_threads"] = torch.get_num_threads()
        res["torch_interop_threads"] = torch.get_num_interop_threads()

        def ev():
            return dp.eval(coord, cell, atype, atomic=False)

        t0 = time.perf_counter()
        out = ev()
        first = time.perf_counter() - t0
        res["first_eval_s"] = first
        nwarm = 1 if first > args.slow_first else max(args.warmup, 1)
        for _ in range(nwarm - 1):
            out = ev()
        res["warmup"] = nwarm
        times = []
        t_timed = time.perf_counter()
        while len(times) < args.max_evals:
            el = time.perf_counter() - t_timed
            if len(times) >= args.min_evals and el >= args.min_time:
                break
            if len(times) >= 2 and el >= args.max_timed:
                break
            t0 = time.perf_counter()
            out = ev()
            times.append(time.perf_counter() - t0)
        e, f, v = (np.asarray(x, dtype=np.float64) for x in out[:3])
        st = sorted(times)
        res.update(
            times_s=times,
            repeat=len(times),
            time_per_eval_s=st[len(st) // 2] if len(st) % 2 else 0.5 * (st[len(st) // 2 - 1] + st[len(st) // 2]),
            min_s=st[0],
            max_s=st[-1],
            energy=float(e.ravel()[0]),
            force_rms=float(np.sqrt(np.mean(f**2))),
            virial=[float(x) for x in v.ravel()],
        )
        if args.dump:
            np.savez(args.dump, energy=e.ravel()[0], force=f.reshape(-1, 3), virial=v.reshape(9))
    except BaseException as exc:  # noqa: BLE001 - report every failure as data
        res["status"] = "OOM" if _is_oom(exc) else "error"
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        res["error"] = f"{type(exc).__name__}: {lines[0] if lines else ''}"[:500]
        res["traceback_tail"] = traceback.format_exc().strip().splitlines()[-3:]
    res["peak_rss_mb"] = _mb("VmHWM")
    res["wall_s"] = time.perf_counter() - t_start
    with open(args.out, "w") as fh:
        json.dump(res, fh)
    sys.exit(0 if res["status"] == "ok" else 3)


if __name__ == "__main__":
    main()
