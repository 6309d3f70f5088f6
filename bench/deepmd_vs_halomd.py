#!/usr/bin/env python3
"""halomd vs DeePMD-kit, side by side in one run: time per evaluation and peak memory.

    /work/venv/bin/python bench/deepmd_vs_halomd.py            # full matrix
    /work/venv/bin/python bench/deepmd_vs_halomd.py --quick    # 192 atoms, 1 thread

The same model (.dp, converted by `dp convert-backend` to TorchScript `.pth` and to the
AOTInductor `.pt2`) on the same liquid-water box, energy + forces + virial, for every
(model, precision, size, threads) of the matrix:

  halomd   `halomd bench --model M.dp STRUCTURE.extxyz --threads T --format json`
  pt2      `DeepPot(M.pt2).eval(coord, cell, atype, atomic=False)`  (bench/deepmd_eval.py)
  pth      `DeepPot(M.pth).eval(...)`                                (bench/deepmd_eval.py)

Every cell is measured in --rounds rounds (default 2) that alternate which engine runs
first, and each engine's time is its best round's median: load from other tenants of the
host only adds time, and it drifts over minutes, so alternating rounds give both engines
the same chance at a quiet machine. Each measurement is its own process. Peak memory is the
child's maximum resident set size from wait4(2) (ru_maxrss), i.e. the whole process: for
DeePMD that includes the ~0.5-1 GB of the Python/torch runtime and the loaded model
(reported separately as `rss_loaded_mb`).
A child whose RSS passes --mem-limit-gb is killed by this driver and its cell reads "OOM"
(its address space is also capped with RLIMIT_AS as a backstop). Threads: halomd gets
`--threads T` and RAYON_NUM_THREADS=T; DeePMD gets OMP_NUM_THREADS, MKL_NUM_THREADS,
DP_INTRA_OP_PARALLELISM_THREADS = T, DP_INTER_OP_PARALLELISM_THREADS = 1 and
torch.set_num_threads(T).

The energies of all three engines are compared in every cell (float64: |ΔE|/N < 1e-8 eV;
float32: < 1e-4 eV), and once per (model, precision, size) `halomd eval` forces and virial are
compared with DeePMD's, so that the timings are of the same computation.

Results: a table on stdout and OUT/latest.md + OUT/latest.json (OUT = bench/results).
Inputs are built once into --work (default /tmp/halomd-bench) by bench/build_inputs.py.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PY = sys.executable
PREC_TAG = {"float64": "f64", "float32": "f32"}
TOL_E_PER_ATOM = {"float64": 1e-8, "float32": 1e-4}
ENGINES = ("halomd", "pt2", "pth")


def log(msg: str) -> None:
    print(f"[{_dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- children
def _vmrss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return 0


HZ = os.sysconf("SC_CLK_TCK")


def cpu_busy_s() -> float:
    """CPU seconds spent busy by the whole machine since boot (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / HZ


def wait_idle(max_wait: float, threshold: float = 0.3) -> float:
    """Wait until the other processes on the machine use < threshold cores (measured over 1 s);
    returns the last measured load, so a contended measurement can be flagged."""
    t0 = time.perf_counter()
    warned = False
    while True:
        b0, w0 = cpu_busy_s(), time.perf_counter()
        time.sleep(1.0)
        load = (cpu_busy_s() - b0) / (time.perf_counter() - w0)
        if load < threshold or time.perf_counter() - t0 > max_wait:
            if warned:
                log(f"  machine idle again (other load {load:.2f} cores)" if load < threshold
                    else f"  WARNING: still {load:.2f} cores busy after {max_wait:.0f} s; measuring anyway")
            return load
        if not warned:
            log(f"  other processes use {load:.2f} cores; waiting for the machine to be idle "
                f"(up to {max_wait:.0f} s)")
            warned = True
        time.sleep(8.0)


def run_child(cmd: list[str], env: dict, mem_limit_gb: float, timeout: float, stdout_path: Path) -> dict:
    """Run cmd; return its exit status, wall time and peak RSS (wait4), killing it when its
    RSS exceeds mem_limit_gb or it runs past timeout."""
    limit_kib = int(mem_limit_gb * 1024 * 1024)
    as_bytes = int((mem_limit_gb + 8) * 1024**3)

    def _pre():
        resource.setrlimit(resource.RLIMIT_AS, (as_bytes, as_bytes))
        os.setsid()

    idle_wait = getattr(run_child, "idle_wait", None)
    load_before = wait_idle(idle_wait) if idle_wait else None
    busy0 = cpu_busy_s()
    t0 = time.perf_counter()
    with open(stdout_path, "w") as out, open(str(stdout_path) + ".err", "w") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, preexec_fn=_pre, cwd=str(REPO))
    killed = None
    rss_seen = 0
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            break
        rss = _vmrss_kib(p.pid)
        rss_seen = max(rss_seen, rss)
        if killed is None and rss > limit_kib:
            killed = f"OOM: RSS {rss / 1024**2:.1f} GiB passed the {mem_limit_gb:g} GiB limit"
            os.killpg(p.pid, signal.SIGKILL)
        elif killed is None and time.perf_counter() - t0 > timeout:
            killed = f"timeout after {timeout:.0f} s"
            os.killpg(p.pid, signal.SIGKILL)
        time.sleep(0.05)
    p.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    wall = time.perf_counter() - t0
    # CPU used by everything but the child (and this driver's light polling) during the run
    other = (cpu_busy_s() - busy0) - (ru.ru_utime + ru.ru_stime)
    return {
        "other_load_cores": max(other, 0.0) / wall,
        "load_before": load_before,
        "rc": p.returncode,
        "killed": killed,
        "wall_s": time.perf_counter() - t0,
        "peak_rss_mb": ru.ru_maxrss / 1024.0,  # Linux: KiB
        "stderr_tail": Path(str(stdout_path) + ".err").read_text(errors="replace")[-2000:],
    }


def thread_env(threads: int) -> dict:
    env = os.environ.copy()
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS",
              "DP_INTRA_OP_PARALLELISM_THREADS"):
        env[k] = str(threads)
    env["DP_INTER_OP_PARALLELISM_THREADS"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def policy(t_est: float, a) -> tuple[int, int]:
    """(warmup, repeat) for an engine whose evaluation takes about t_est seconds."""
    warmup = 2 if t_est < 1.0 else 1
    n = max(a.min_evals, math.ceil(a.min_time / max(t_est, 1e-6)))
    if t_est * n > a.max_timed:
        n = max(2, int(a.max_timed // t_est))
    return warmup, min(n, a.max_evals)


def run_halomd(a, model: Path, struct: Path, threads: int, t_est: float | None, tag: str) -> dict:
    env = thread_env(threads)
    res: dict = {"engine": "halomd"}
    if t_est is None:  # probe: one evaluation
        out = a.work / "runs" / f"{tag}.probe.json"
        r = run_child([str(a.halomd), "bench", "--model", str(model), "--repeat", "1", "--warmup", "0",
                       "--threads", str(threads), "--format", "json", str(struct)], env, a.mem_limit_gb,
                      a.timeout, out)
        if r["rc"] != 0 or r["killed"]:
            return {**res, "status": "OOM" if r["killed"] and r["killed"].startswith("OOM") else "error",
                    "error": r["killed"] or r["stderr_tail"].strip().splitlines()[-1:], "peak_rss_mb": r["peak_rss_mb"]}
        t_est = json.loads(out.read_text())["time_per_eval_s"]
        res["probe_s"] = t_est
    warmup, repeat = policy(t_est, a)
    out = a.work / "runs" / f"{tag}.json"
    r = run_child([str(a.halomd), "bench", "--model", str(model), "--repeat", str(repeat), "--warmup",
                   str(warmup), "--threads", str(threads), "--format", "json", str(struct)], env,
                  a.mem_limit_gb, a.timeout, out)
    res["peak_rss_mb"] = r["peak_rss_mb"]
    res["other_load_cores"] = r["other_load_cores"]
    if r["rc"] != 0 or r["killed"]:
        err = r["killed"] or " ".join(r["stderr_tail"].strip().splitlines()[-2:])
        return {**res, "status": "OOM" if err.startswith("OOM") else "error", "error": err}
    j = json.loads(out.read_text())
    res.update(status="ok", warmup=warmup, repeat=j["repeat"], time_per_eval_s=j["time_per_eval_s"],
               min_s=j["min_s"], max_s=j["max_s"], energy=j["energy"], peak_rss_self_mb=j.get("peak_rss_mb"),
               threads_reported=j.get("threads"), wall_s=r["wall_s"])
    return res


def run_deepmd(a, engine: str, model: Path, npz: Path, threads: int, tag: str, dump: Path | None) -> dict:
    res: dict = {"engine": engine}
    if not model.exists():
        return {**res, "status": "unavailable", "error": f"{model.name} missing (conversion failed, see models)"}
    out = a.work / "runs" / f"{tag}.json"
    out.unlink(missing_ok=True)
    cmd = [PY, str(HERE / "deepmd_eval.py"), "--model", str(model), "--structure", str(npz),
           "--threads", str(threads), "--min-evals", str(a.min_evals), "--min-time", str(a.min_time),
           "--max-evals", str(a.max_evals), "--max-timed", str(a.max_timed), "--out", str(out)]
    if dump is not None:
        cmd += ["--dump", str(dump)]
    r = run_child(cmd, thread_env(threads), a.mem_limit_gb, a.timeout, a.work / "runs" / f"{tag}.stdout")
    res["peak_rss_mb"] = r["peak_rss_mb"]
    res["wall_s"] = r["wall_s"]
    res["other_load_cores"] = r["other_load_cores"]
    j = json.loads(out.read_text()) if out.exists() else {}
    if r["killed"]:
        status = "OOM" if r["killed"].startswith("OOM") else "timeout"
        return {**res, "status": status, "error": r["killed"]}
    if r["rc"] != 0 and not j:
        sig = f" (signal {-r['rc']}{', likely the kernel OOM killer' if r['rc'] == -9 else ''})" if r["rc"] < 0 else ""
        tail = r["stderr_tail"].strip().splitlines()[-1:] or [""]
        return {**res, "status": "OOM" if r["rc"] == -9 else "error", "error": f"exit {r['rc']}{sig}: {tail[0]}"}
    if j.get("status") != "ok":
        return {**res, "status": j.get("status", "error"), "error": j.get("error"),
                "peak_rss_self_mb": j.get("peak_rss_mb")}
    res.update(status="ok", warmup=j["warmup"], repeat=j["repeat"], time_per_eval_s=j["time_per_eval_s"],
               min_s=j["min_s"], max_s=j["max_s"], first_eval_s=j["first_eval_s"], load_s=j["load_s"],
               energy=j["energy"], rss_loaded_mb=j["rss_loaded_mb"], peak_rss_self_mb=j["peak_rss_mb"],
               torch_threads=j["torch_threads"])
    return res


def halomd_eval(a, model_dp: Path, struct: Path, tag: str) -> dict:
    """Energy, forces and virial from `halomd eval`."""
    import numpy as np

    out = a.work / "runs" / f"eval_{tag}.json"
    r = run_child([str(a.halomd), "eval", "--model", str(model_dp), "--no-atom-virial", "--format", "json",
                   str(struct)], thread_env(2), a.mem_limit_gb, a.timeout, out)
    if r["rc"] != 0 or r["killed"]:
        return {"status": "error", "error": r["killed"] or r["stderr_tail"][-300:]}
    h = json.loads(out.read_text())
    return {"status": "ok", "energy": float(h["energy"]),
            "force": np.asarray(h["forces"], dtype=float).reshape(-1, 3),
            "virial": np.asarray(h["virial"], dtype=float).reshape(9)}


def load_dump(path: Path) -> dict:
    import numpy as np

    d = np.load(path)
    return {"energy": float(d["energy"]), "force": d["force"].reshape(-1, 3), "virial": d["virial"].reshape(9)}


def compare(x: dict, y: dict, natoms: int) -> dict:
    """Energy/force/virial differences of two evaluations of the same structure."""
    import numpy as np

    return {
        "status": "ok",
        "dE_per_atom": abs(x["energy"] - y["energy"]) / natoms,
        "max_abs_dF": float(np.max(np.abs(x["force"] - y["force"]))),
        "max_abs_F": float(np.max(np.abs(y["force"]))),
        "rms_F": [float(np.sqrt(np.mean(x["force"] ** 2))), float(np.sqrt(np.mean(y["force"] ** 2)))],
        "max_abs_dvirial_per_atom": float(np.max(np.abs(x["virial"] - y["virial"]))) / natoms,
    }


# --------------------------------------------------------------------------- report
def fmt_t(c: dict | None) -> str:
    if not c:
        return "–"
    if c.get("status") != "ok":
        return c.get("status", "?").upper() if c.get("status") != "OOM" else "OOM"
    return f"{c['time_per_eval_s']:.3g}"


def fmt_mem(c: dict | None) -> str:
    if not c or c.get("peak_rss_mb") is None:
        return "–"
    if c.get("status") == "OOM":
        return f">{c['peak_rss_mb'] / 1024:.0f} GB" if c["peak_rss_mb"] > 1024 else "OOM"
    if c.get("status") != "ok":
        return "–"
    return f"{c['peak_rss_mb']:.0f}"


def ratios(row: dict) -> dict:
    h, p2, p = (row["cells"].get(e) for e in ENGINES)
    out: dict = {}
    ok = lambda c: c is not None and c.get("status") == "ok"  # noqa: E731
    if ok(h):
        th = h["time_per_eval_s"]
        dts = [c["time_per_eval_s"] for c in (p2, p) if ok(c)]
        if dts:
            out["deepmd_best_s"] = min(dts)
            out["deepmd_best_engine"] = "pt2" if ok(p2) and p2["time_per_eval_s"] == min(dts) else "pth"
            out["speedup_vs_deepmd_best"] = min(dts) / th
        if ok(p2):
            out["speedup_vs_pt2"] = p2["time_per_eval_s"] / th
        if ok(p):
            out["speedup_vs_pth"] = p["time_per_eval_s"] / th
        for name, c in (("pth", p), ("pt2", p2)):
            if c is not None and c.get("peak_rss_mb") and h.get("peak_rss_mb"):
                if ok(c):
                    out[f"mem_ratio_{name}"] = c["peak_rss_mb"] / h["peak_rss_mb"]
                elif c.get("status") == "OOM":
                    out[f"mem_ratio_{name}_lower_bound"] = c["peak_rss_mb"] / h["peak_rss_mb"]
    return out


def best_round(prev: dict | None, new: dict) -> dict:
    """Merges a cell's rounds: the fastest successful round's numbers, every round's median in
    `round_times_s`, and the largest peak memory of any round."""
    rounds = (prev or {}).get("round_times_s", []) + (
        [new["time_per_eval_s"]] if new.get("status") == "ok" else [])
    peak = max((c.get("peak_rss_mb") or 0) for c in (prev or {}, new))
    if prev is None or prev.get("status") != "ok" or (
            new.get("status") == "ok" and new["time_per_eval_s"] < prev["time_per_eval_s"]):
        best = dict(new)
    else:
        best = dict(prev)
    best["round_times_s"] = rounds
    if peak:
        best["peak_rss_mb"] = peak
    return best


def render_md(report: dict) -> str:
    L = []
    m = report["meta"]
    L.append("# halomd vs DeePMD-kit: time per evaluation and peak memory\n")
    L.append(f"Measured {m['date']} on {m['machine']} ({m['cpus']} CPUs, {m['mem_gb']:.0f} GB RAM). "
             f"deepmd-kit {m['deepmd_version']}, torch {m['torch_version']}, halomd {m['halomd_commit']}.")
    L.append(f"Command: `{m['command']}` (total {m['total_minutes']:.1f} min).\n")
    L.append("Energy + forces + virial of liquid water at 1 g/cm³ (no per-atom virial). Time: median "
             f"wall time per evaluation in seconds, the best of {m['settings'].get('rounds', 1)} rounds that "
             "alternate which engine runs first. Memory: peak RSS of the whole process in MB "
             "(wait4 ru_maxrss; DeePMD's includes the Python/torch runtime, see `rss_loaded_mb` in the JSON). "
             f"OOM: killed when the RSS passed {m['mem_limit_gb']:g} GiB. Speed-up = DeePMD time / halomd "
             "time (best = the faster of .pt2 and .pth); memory ratio = DeePMD peak / halomd peak.\n")
    hdr = ("| model | prec | atoms | thr | halomd s | pt2 s | pth s | halomd µs/atom | speed-up vs best "
           "| vs pt2 | vs pth | halomd MB | pt2 MB | pth MB | halomd MB/atom | pth/halomd mem | ΔE/N max (eV) |")
    L.append(hdr)
    L.append("|" + "|".join(["---"] * (hdr.count("|") - 1)) + "|")
    for row in report["rows"]:
        c = row["cells"]
        h = c.get("halomd")
        r = row["ratios"]
        hok = h is not None and h.get("status") == "ok"
        us = f"{h['time_per_eval_s'] / row['natoms'] * 1e6:.0f}" if hok else "–"
        mpa = f"{h['peak_rss_mb'] / row['natoms']:.3f}" if hok else "–"

        def rr(k):
            return f"{r[k]:.2f}×" if k in r else "–"

        mem_pth = rr("mem_ratio_pth") if "mem_ratio_pth" in r else (
            f">{r['mem_ratio_pth_lower_bound']:.0f}×" if "mem_ratio_pth_lower_bound" in r else "–")
        de = row.get("max_dE_per_atom")
        L.append(
            f"| {row['model']} | {PREC_TAG[row['precision']]} | {row['natoms']} | {row['threads']} | {fmt_t(h)} "
            f"| {fmt_t(c.get('pt2'))} | {fmt_t(c.get('pth'))} | {us} | {rr('speedup_vs_deepmd_best')} "
            f"| {rr('speedup_vs_pt2')} | {rr('speedup_vs_pth')} | {fmt_mem(h)} | {fmt_mem(c.get('pt2'))} "
            f"| {fmt_mem(c.get('pth'))} | {mpa} | {mem_pth} | {'–' if de is None else f'{de:.1e}'} |"
        )
    if report.get("parity"):
        L.append("\n## Same computation: energies, forces and virials compared\n")
        L.append("`halomd eval` (2 threads) against the DeePMD evaluations of the timing runs (first thread "
                 "count), and DeePMD's .pt2 against its .pth.\n")
        L.append("| model | atoms | a vs b | ΔE/N (eV) | max abs ΔF (eV/Å) | max abs F | rms F a / b "
                 "| max abs Δvirial/N (eV) |")
        L.append("|---|---|---|---|---|---|---|---|")
        for k, p in report["parity"].items():
            if p.get("status") == "ok":
                L.append(f"| {p['model']} | {p['natoms']} | {p['a']} vs {p['b']} | {p['dE_per_atom']:.1e} | "
                         f"{p['max_abs_dF']:.1e} | {p['max_abs_F']:.2f} | {p['rms_F'][0]:.3f} / {p['rms_F'][1]:.3f} "
                         f"| {p['max_abs_dvirial_per_atom']:.1e} |")
            else:
                L.append(f"| {k} | | | error: {p.get('error')} | | | | |")
    notes = report.get("problems") or []
    if notes:
        L.append("\n## Failures and mismatches\n")
        L += [f"- {n}" for n in notes]
    conv = report.get("conversions") or {}
    if conv:
        L.append("\n## Model conversions (`dp convert-backend`)\n")
        for name, cv in conv.items():
            parts = []
            for fmt, v in cv.items():
                s = f"{fmt}: {'ok' if v.get('ok') else 'FAILED'} ({v.get('seconds')} s"
                if v.get("lower_input_kind"):
                    s += f", lower {v['lower_input_kind']}"
                s += ")"
                if not v.get("ok"):
                    s += f" — {v.get('error')}"
                parts.append(s)
            L.append(f"- {name}: " + "; ".join(parts))
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------- main
def git_commit() -> str:
    try:
        c = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return c + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/halomd-bench"), help="models/structures cache")
    ap.add_argument("--out", type=Path, default=HERE / "results", help="where latest.md/latest.json go")
    ap.add_argument("--quick", action="store_true", help="192 atoms, 1 thread only")
    ap.add_argument("--models", default="dpa3,se_e2_a")
    ap.add_argument("--precisions", default="float64,float32")
    ap.add_argument("--sizes", default="192,1536", help="atoms: 3·n³ (192 = 4³ molecules, 1536 = 8³)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--min-evals", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=5.0, help="collect at least this many timed seconds")
    ap.add_argument("--max-timed", type=float, default=60.0,
                    help="but stop after this many timed seconds (keeping at least 2 evaluations)")
    ap.add_argument("--max-evals", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2,
                    help="measure every engine of a cell this many times, alternating which goes first; "
                         "each engine's time is its best round (the host's load only adds time, and "
                         "alternating rounds expose the engines to the same load)")
    ap.add_argument("--mem-limit-gb", type=float, default=19.0, help="RSS limit per child (GiB)")
    ap.add_argument("--timeout", type=float, default=1200.0, help="per child, seconds")
    ap.add_argument("--idle-wait", type=float, default=1800.0,
                    help="before each measurement wait up to this many seconds for other processes "
                         "to leave the CPUs idle (0: do not wait)")
    ap.add_argument("--halomd", type=Path, default=REPO / "target" / "release" / "halomd")
    ap.add_argument("--no-build", action="store_true", help="do not run `cargo build --release -p halomd`")
    a = ap.parse_args()
    if a.quick:
        a.sizes, a.threads = "192", "1"
    t_start = time.perf_counter()
    run_child.idle_wait = a.idle_wait
    a.work = a.work.resolve()
    (a.work / "runs").mkdir(parents=True, exist_ok=True)
    a.out.mkdir(parents=True, exist_ok=True)
    models = [m for m in a.models.split(",") if m]
    precs = [p for p in a.precisions.split(",") if p]
    sizes = [int(s) for s in a.sizes.split(",") if s]
    threads = [int(t) for t in a.threads.split(",") if t]
    engines = [e for e in a.engines.split(",") if e]
    for n in sizes:
        if n % 3 or round((n // 3) ** (1 / 3)) ** 3 != n // 3:
            sys.exit(f"--sizes: {n} is not 3·k³ atoms")

    if "halomd" in engines and not a.no_build:
        log("cargo build --release -p halomd")
        subprocess.run(["cargo", "build", "--release", "-p", "halomd"], cwd=str(REPO), check=True)
    if "halomd" in engines and not a.halomd.exists():
        sys.exit(f"{a.halomd} not found; build it with `cargo build --release -p halomd`")

    # ---- inputs (child process: keeps torch out of this one)
    fmts = [e for e in ("pth", "pt2") if e in engines]
    summary_path = a.work / "build_summary.json"
    log("building / checking models and structures (cached in %s)" % a.work)
    subprocess.run([PY, str(HERE / "build_inputs.py"), "--work", str(a.work), "--models", ",".join(models),
                    "--precisions", ",".join(precs), "--nmols", ",".join(str(n // 3) for n in sizes),
                    "--formats", ",".join(fmts) or "pth", "--summary", str(summary_path)],
                   check=True, env=thread_env(2))
    build = json.loads(summary_path.read_text())
    versions = next(iter(build["models"].values()), {})

    rows: list[dict] = []
    parity_res: dict = {}
    problems: list[str] = []
    report: dict = {}

    def save() -> None:
        meta = {
            "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "machine": platform.processor() or platform.machine(),
            "cpu_model": _cpu_model(),
            "cpus": os.cpu_count(),
            "mem_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3,
            "deepmd_version": versions.get("deepmd_version"),
            "torch_version": versions.get("torch_version"),
            "halomd_commit": git_commit(),
            "command": " ".join(["/work/venv/bin/python", "bench/deepmd_vs_halomd.py"] + sys.argv[1:]),
            "total_minutes": (time.perf_counter() - t_start) / 60,
            "mem_limit_gb": a.mem_limit_gb,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        }
        meta["machine"] = meta["cpu_model"] or meta["machine"]
        report.update(meta=meta, structures=build["structures"], models={
            k: {kk: v.get(kk) for kk in ("kind", "precision", "config", "force_scale", "activations",
                                          "energy_numpy", "conversions")}
            for k, v in build["models"].items()}, rows=rows, parity=parity_res, problems=problems,
            conversions={k: v.get("conversions", {}) for k, v in build["models"].items()})
        (a.out / "latest.json").write_text(json.dumps(report, indent=1))
        (a.out / "latest.md").write_text(render_md(report))

    for kind in models:
        for prec in precs:
            name = f"{kind}_{PREC_TAG[prec]}"
            mdir = a.work / "models"
            conv = build["models"][name].get("conversions", {})
            for fmt in fmts:
                if fmt in conv and not conv[fmt]["ok"]:
                    msg = f"{name}.{fmt}: dp convert-backend failed: {conv[fmt]['error']}"
                    if msg not in problems:
                        problems.append(msg)
            t_est_prev: dict[int, float] = {}
            prev_n = None
            for n in sizes:
                struct = a.work / "structures" / f"water_{n}.extxyz"
                npz = a.work / "structures" / f"water_{n}.npz"
                dumps: dict[str, Path] = {}
                for t in threads:
                    tag = f"{name}_{n}_t{t}"
                    cells: dict = {}
                    row = {"model": kind, "precision": prec, "natoms": n, "threads": t, "cells": cells}
                    rows.append(row)
                    for rnd in range(max(1, a.rounds)):
                        order = [e for e in ENGINES if e in engines]
                        if rnd % 2:
                            order.reverse()
                        for eng in order:
                            if cells.get(eng, {}).get("status") not in ("ok", None):
                                continue  # an OOM or error does not get better in another round
                            sfx = f"_r{rnd}" if rnd else ""
                            if eng == "halomd":
                                est = None
                                if "halomd" in cells:
                                    est = cells["halomd"]["time_per_eval_s"]
                                elif prev_n is not None and t in t_est_prev:
                                    est = t_est_prev[t] * n / prev_n
                                log(f"{tag}: halomd (round {rnd + 1})")
                                res = run_halomd(a, mdir / f"{name}.dp", struct, t, est, f"{tag}_halomd{sfx}")
                            else:
                                want_dump = eng not in dumps
                                dpath = a.work / "runs" / f"{tag}_{eng}.dump.npz" if want_dump else None
                                log(f"{tag}: deepmd {eng} (round {rnd + 1})")
                                res = run_deepmd(a, eng, mdir / f"{name}.{eng}", npz, t, f"{tag}_{eng}{sfx}", dpath)
                                if want_dump and res.get("status") == "ok":
                                    dumps[eng] = dpath
                            cells[eng] = best_round(cells.get(eng), res)
                    if cells.get("halomd", {}).get("status") == "ok":
                        t_est_prev[t] = cells["halomd"]["time_per_eval_s"]
                    # same computation: energies agree
                    es = {e: c["energy"] for e, c in cells.items() if c.get("status") == "ok"}
                    if "halomd" in es and len(es) > 1:
                        des = {e: abs(v - es["halomd"]) / n for e, v in es.items() if e != "halomd"}
                        row["dE_per_atom_vs_halomd"] = des
                        row["max_dE_per_atom"] = max(des.values())
                        if row["max_dE_per_atom"] > TOL_E_PER_ATOM[prec]:
                            problems.append(f"{tag}: energy mismatch |ΔE|/N = {row['max_dE_per_atom']:.2e} eV "
                                            f"> {TOL_E_PER_ATOM[prec]:g} ({des})")
                    for e, c in cells.items():
                        if c.get("other_load_cores", 0.0) > 0.15:
                            problems.append(f"{tag} {e}: other processes used {c['other_load_cores']:.2f} "
                                            "cores during the measurement (timing contended)")
                        if c.get("status") != "ok":
                            problems.append(f"{tag} {e}: {c.get('status')}: {c.get('error')}")
                    row["ratios"] = ratios(row)
                    _print_row(row)
                    save()
                if "halomd" in engines and dumps:
                    log(f"{name}_{n}: halomd eval vs deepmd {'/'.join(dumps)} (forces, virial)")
                    hres = halomd_eval(a, mdir / f"{name}.dp", struct, f"{name}_{n}")
                    pairs = [("halomd", e) for e in dumps] + ([("pt2", "pth")] if len(dumps) == 2 else [])
                    tolf = 1e-8 if prec == "float64" else 1e-3
                    for x, y in pairs:
                        key = f"{name}_{n}_{x}_vs_{y}"
                        if x == "halomd" and hres.get("status") != "ok":
                            p = hres
                        else:
                            p = compare(hres if x == "halomd" else load_dump(dumps[x]), load_dump(dumps[y]), n)
                        p.update(model=name, natoms=n, a=x, b=y)
                        parity_res[key] = p
                        if p.get("status") != "ok":
                            problems.append(f"{key}: halomd eval failed: {p.get('error')}")
                        elif p["max_abs_dF"] > tolf * max(1.0, p["max_abs_F"]):
                            problems.append(f"{key}: forces differ, max|ΔF| = {p['max_abs_dF']:.2e} eV/Å "
                                            f"(max|F| = {p['max_abs_F']:.2f}), max|Δvirial|/N = "
                                            f"{p['max_abs_dvirial_per_atom']:.2e} eV")
                    save()
                prev_n = n
    save()
    print(render_md(report))
    log(f"wrote {a.out / 'latest.md'} and {a.out / 'latest.json'} "
        f"({(time.perf_counter() - t_start) / 60:.1f} min)")


def _cpu_model() -> str | None:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _print_row(row: dict) -> None:
    c = row["cells"]
    r = row["ratios"]
    sp = r.get("speedup_vs_deepmd_best")
    mr = r.get("mem_ratio_pth", r.get("mem_ratio_pth_lower_bound"))
    log(f"  {row['model']} {PREC_TAG[row['precision']]} {row['natoms']} atoms {row['threads']} thr: "
        f"halomd {fmt_t(c.get('halomd'))} s / {fmt_mem(c.get('halomd'))} MB | pt2 {fmt_t(c.get('pt2'))} s / "
        f"{fmt_mem(c.get('pt2'))} MB | pth {fmt_t(c.get('pth'))} s / {fmt_mem(c.get('pth'))} MB | "
        f"speed-up {'–' if sp is None else f'{sp:.2f}×'} | pth/halomd mem {'–' if mr is None else f'{mr:.1f}×'}")


if __name__ == "__main__":
    main()
