#!/usr/bin/env python3
"""Build the benchmark inputs: water boxes and DeePMD-kit models (.dp, .pth, .pt2).

Run by `deepmd_vs_halomd.py` in a child process (so the driver never imports torch);
it can also be run on its own:

    /work/venv/bin/python bench/build_inputs.py --work /tmp/halomd-bench

Everything lands in WORK (outside the repository) and is reused on the next run when its
inputs are unchanged: `WORK/structures/water_N.extxyz`, `WORK/models/NAME.{dp,pth,pt2}` and
`WORK/models/NAME.json` (how it was built, conversion times and errors).

Models (configs as DeePMD-kit's examples/water/{dpa3,se_e2_a}, random seeded weights):
  dpa3     n_dim 128, e_dim 64, a_dim 32, 6 layers, e_rcut 6.0/5.3, e_sel 120, a_rcut 4.0/3.5,
           a_sel 30, a_compress 1/2/split, smooth edge update, exp switch, silut:10.0,
           fitting [240,240,240] silut:10.0 (DPA-3.1 water example)
  se_e2_a  sel [46,92], rcut 6.0/0.5, neuron [25,50,100], axis_neuron 16, type_one_side,
           fitting [240,240,240] (tanh)
  se_e2_a_2side  the same with type_one_side false (argcheck default; no .pt2 export)
Each in float64 and float32. The float32 model has exactly the float64 model's weights,
rounded, so the two precisions compute the same function.

Weights: DeePMD's own seeded initialiser, then realistic statistics (davg/dstd computed by
DeePMD's `compute_input_stats` on the ~200-atom box; DPA3 keeps fix_stat_std 0.3), residuals
and resnet steps spread as a trained model has them, random out_bias/bias_atom_e, and the last
fitting layer rescaled so that rms|F| = 1 eV/Å on the small box. The pre-activation
saturation (fraction of |z| > 3, and above the silut threshold) is measured with DeePMD's NumPy
backend and stored in NAME.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("DP_INTRA_OP_PARALLELISM_THREADS", "2")
os.environ.setdefault("DP_INTER_OP_PARALLELISM_THREADS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

sys.dont_write_bytecode = True

BUILD_VERSION = 1  # bump to invalidate cached models/structures
TYPE_MAP = ["O", "H"]
WATER_MASS_G = 18.01528 / 6.02214076e23  # g per molecule
SEED = 20250611


# --------------------------------------------------------------------------- structures
def water_box(nmol: int, seed: int) -> dict:
    """Liquid-density (1.00 g/cm³) water: molecules on a jittered cubic lattice, random
    orientations accepted only if every intermolecular distance is realistic
    (O–O ≥ 2.55 Å, O–H ≥ 1.55 Å, H–H ≥ 1.55 Å, minimum image)."""
    rng = np.random.default_rng(seed)
    side = round(nmol ** (1 / 3))
    if side**3 != nmol:
        raise ValueError(f"nmol must be a cube, got {nmol}")
    vol = nmol * WATER_MASS_G / 1.0 * 1e24  # Å^3
    L = vol ** (1 / 3)
    a = L / side
    r_oh, theta = 0.9572, np.deg2rad(104.52)
    dmin = {(0, 0): 2.55, (0, 1): 1.55, (1, 0): 1.55, (1, 1): 1.55}
    pos: list[np.ndarray] = []
    types: list[int] = []

    def ok(cand: np.ndarray) -> bool:
        if not pos:
            return True
        P = np.array(pos)
        T = np.array(types)
        for x, t in zip(cand, (0, 1, 1)):
            d = P - x
            d -= L * np.round(d / L)
            r = np.sqrt((d * d).sum(1))
            lim = np.where(T == 0, dmin[(t, 0)], dmin[(t, 1)])
            if np.any(r < lim):
                return False
        return True

    for ix in range(side):
        for iy in range(side):
            for iz in range(side):
                for _ in range(5000):
                    o = (np.array([ix, iy, iz]) + 0.5 + rng.uniform(-0.12, 0.12, 3)) * a
                    u = rng.normal(size=3)
                    u /= np.linalg.norm(u)
                    w = np.cross(u, rng.normal(size=3))
                    w /= np.linalg.norm(w)
                    h1 = o + r_oh * (np.cos(theta / 2) * u + np.sin(theta / 2) * w)
                    h2 = o + r_oh * (np.cos(theta / 2) * u - np.sin(theta / 2) * w)
                    cand = np.array([o, h1, h2])
                    if ok(cand):
                        break
                else:
                    raise RuntimeError("water packing failed")
                pos += list(cand)
                types += [0, 1, 1]
    pos = np.array(pos) % L  # wrapped into the cell
    return dict(coord=pos, atype=np.array(types), cell=np.eye(3) * L, nmol=nmol)


def min_dist_report(s: dict) -> dict:
    """Minimum intermolecular distances per pair type (minimum image) and the mean
    neighbour counts within 4 and 6 Å."""
    x, t, L = s["coord"], s["atype"], s["cell"][0, 0]
    mol = np.arange(len(x)) // 3
    out = {"O-O": np.inf, "O-H": np.inf, "H-H": np.inf}
    n4 = n6 = 0
    for i in range(len(x)):
        d = x - x[i]
        d -= L * np.round(d / L)
        r = np.sqrt((d * d).sum(1))
        r[i] = np.inf
        n4 += int((r < 4.0).sum())
        n6 += int((r < 6.0).sum())
        inter = mol != mol[i]
        for j in np.nonzero(inter)[0]:
            key = "-".join(sorted(("O" if t[i] == 0 else "H", "O" if t[j] == 0 else "H"), reverse=True))
            out[key] = min(out[key], float(r[j]))
    return {
        "min_intermolecular": {k: round(v, 3) for k, v in out.items()},
        "mean_neighbors_4A": n4 / len(x),
        "mean_neighbors_6A": n6 / len(x),
    }


def write_structures(work: Path, nmols: list[int]) -> dict:
    from ase import Atoms
    from ase.io import write

    sdir = work / "structures"
    sdir.mkdir(parents=True, exist_ok=True)
    info = {}
    for nmol in nmols:
        natoms = 3 * nmol
        path = sdir / f"water_{natoms}.extxyz"
        npz = sdir / f"water_{natoms}.npz"
        meta_path = sdir / f"water_{natoms}.json"
        if path.exists() and npz.exists() and meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta.get("build_version") == BUILD_VERSION:
                info[natoms] = meta
                continue
        s = water_box(nmol, SEED + nmol)
        atoms = Atoms(
            symbols=[TYPE_MAP[t] for t in s["atype"]], positions=s["coord"], cell=s["cell"], pbc=True
        )
        write(str(path), atoms, format="extxyz")
        np.savez(npz, coord=s["coord"], atype=s["atype"], cell=s["cell"])
        meta = dict(
            build_version=BUILD_VERSION,
            natoms=natoms,
            nmol=nmol,
            box_A=float(s["cell"][0, 0]),
            density_g_cm3=1.0,
            extxyz=str(path),
            npz=str(npz),
            **min_dist_report(s),
        )
        meta_path.write_text(json.dumps(meta, indent=1))
        info[natoms] = meta
    return info


# --------------------------------------------------------------------------- models
def dpa3_config(precision: str) -> dict:
    return dict(
        type_map=list(TYPE_MAP),
        descriptor=dict(
            type="dpa3",
            repflow=dict(
                n_dim=128,
                e_dim=64,
                a_dim=32,
                nlayers=6,
                e_rcut=6.0,
                e_rcut_smth=5.3,
                e_sel=120,
                a_rcut=4.0,
                a_rcut_smth=3.5,
                a_sel=30,
                axis_neuron=4,
                fix_stat_std=0.3,
                a_compress_rate=1,
                a_compress_e_rate=2,
                a_compress_use_split=True,
                update_angle=True,
                smooth_edge_update=True,
                edge_init_use_dist=True,
                use_exp_switch=True,
                update_style="res_residual",
                update_residual=0.1,
                update_residual_init="const",
            ),
            activation_function="silut:10.0",
            use_tebd_bias=False,
            precision=precision,
            concat_output_tebd=False,
            seed=1,
        ),
        fitting_net=dict(
            type="ener",
            neuron=[240, 240, 240],
            resnet_dt=True,
            precision=precision,
            activation_function="silut:10.0",
            seed=1,
        ),
    )


def se_e2_a_config(precision: str, type_one_side: bool = True) -> dict:
    return dict(
        type_map=list(TYPE_MAP),
        descriptor=dict(
            type="se_e2_a",
            sel=[46, 92],
            rcut_smth=0.5,
            rcut=6.0,
            neuron=[25, 50, 100],
            resnet_dt=False,
            axis_neuron=16,
            # The example's argcheck default (type_one_side False) cannot be exported to .pt2 by
            # deepmd-kit 3.2.0 (GuardOnDataDependentSymNode in DescrptSeA.call's per-type loop),
            # so the default benchmark model is one-sided; `se_e2_a_2side` is the other.
            type_one_side=type_one_side,
            activation_function="tanh",
            precision=precision,
            seed=1,
        ),
        fitting_net=dict(
            type="ener",
            neuron=[240, 240, 240],
            resnet_dt=True,
            activation_function="tanh",
            precision=precision,
            seed=1,
        ),
    )


CONFIGS = {
    "dpa3": dpa3_config,
    "se_e2_a": se_e2_a_config,
    "se_e2_a_2side": lambda precision: se_e2_a_config(precision, type_one_side=False),
}
SEEDS = {"dpa3": 1, "se_e2_a": 2, "se_e2_a_2side": 3}
PREC_TAG = {"float64": "f64", "float32": "f32"}


def model_name(kind: str, precision: str) -> str:
    return f"{kind}_{PREC_TAG[precision]}"


def _walk_layers(obj, fn):
    if isinstance(obj, dict):
        if obj.get("@class") == "Layer":
            fn(obj)
        for v in obj.values():
            _walk_layers(v, fn)
    elif isinstance(obj, list):
        for v in obj:
            _walk_layers(v, fn)


def _copy_arrays(template, src):
    """`template` with each array replaced by the same-shaped array of `src`, cast to the
    template's dtype (turns the float64 model into its float32 twin)."""
    if isinstance(template, dict):
        return {k: _copy_arrays(v, src[k]) if k in src else v for k, v in template.items()}
    if isinstance(template, list):
        return [_copy_arrays(t, s) for t, s in zip(template, src)]
    if isinstance(template, np.ndarray):
        s = np.asarray(src)
        if s.shape != template.shape:
            raise RuntimeError(f"shape mismatch {s.shape} vs {template.shape}")
        return s.astype(template.dtype)
    return template


class _Eager:
    """DeePMD's PyTorch model run eagerly: used to choose the force scale."""

    def __init__(self, d: dict):
        from deepmd.pt.model.model import BaseModel as PtBaseModel

        self.model = PtBaseModel.deserialize(copy.deepcopy(d))
        self.model.eval()

    def forces_and_atom_energy(self, s: dict):
        import torch

        coord = torch.tensor(s["coord"][None], dtype=torch.float64)
        atype = torch.tensor(s["atype"][None], dtype=torch.int64)
        box = torch.tensor(s["cell"].reshape(1, 9), dtype=torch.float64)
        out = self.model(coord, atype, box=box)
        return out["force"].detach().numpy()[0], out["atom_energy"].detach().numpy()[0, :, 0]


@contextlib.contextmanager
def _activation_probe(stats: dict):
    """Pre-activation statistics of DeePMD's NumPy backend (saturation check)."""
    import deepmd.dpmodel.descriptor.repflows as dp_repflows
    import deepmd.dpmodel.utils.network as dp_network

    orig_net, orig_rf = dp_network.get_activation_fn, dp_repflows.get_activation_fn

    def patched(name):
        fn = orig_net(name)
        key = name.lower()
        if key in ("none", "linear"):
            return fn

        def wrapped(x):
            z = np.asarray(x)
            st = stats.setdefault(key, {"n": 0, "abs_gt_3": 0, "above_threshold": 0})
            st["n"] += int(z.size)
            st["abs_gt_3"] += int(np.sum(np.abs(z) > 3.0))
            if key.startswith("silut"):
                thr = float(key.split(":")[-1]) if ":" in key else 3.0
                st["above_threshold"] += int(np.sum(z >= thr))
            return fn(x)

        return wrapped

    dp_network.get_activation_fn = patched
    dp_repflows.get_activation_fn = patched
    try:
        yield
    finally:
        dp_network.get_activation_fn, dp_repflows.get_activation_fn = orig_net, orig_rf


def build_f64_dict(kind: str, stat_struct: dict, rng: np.random.Generator) -> tuple[dict, dict, float]:
    """The float64 model with realistic statistics, spread residuals and a force scale."""
    from deepmd.dpmodel.model.model import get_model

    cfg = CONFIGS[kind]("float64")
    model = get_model(copy.deepcopy(cfg))
    sample = [
        {
            "coord": stat_struct["coord"].reshape(1, -1).astype(np.float64),
            "atype": stat_struct["atype"].reshape(1, -1).astype(np.int64),
            "box": stat_struct["cell"].reshape(1, 9).astype(np.float64),
            "natoms": np.array([[len(stat_struct["atype"])] * 2 + [int((stat_struct["atype"] == t).sum()) for t in range(2)]]),
        }
    ]
    model.atomic_model.descriptor.compute_input_stats(sample)
    d = model.serialize()
    desc = d["descriptor"]

    def _idt(layer):
        v = layer["@variables"]
        if v.get("idt") is not None:
            v["idt"] = rng.normal(0.1, 0.05, v["idt"].shape).astype(v["idt"].dtype)

    _walk_layers(d, _idt)
    if kind == "dpa3":
        for layer in desc["repflow_variable"]["repflow_layers"]:
            lv = layer.get("@variables") or {}
            for key in ("n_residual", "e_residual", "a_residual"):
                if key in lv:
                    lv[key] = [rng.normal(0.3, 0.1, r.shape).astype(r.dtype) for r in lv[key]]
    mv = d["@variables"]
    mv["out_bias"] = rng.uniform(-8.0, -1.0, mv["out_bias"].shape)
    mv["out_std"] = rng.uniform(0.5, 2.0, mv["out_std"].shape)
    fv = d["fitting"]["@variables"]
    fv["bias_atom_e"] = rng.uniform(-1.0, 1.0, fv["bias_atom_e"].shape).astype(fv["bias_atom_e"].dtype)

    # last fitting layer: rms|F| -> 1 eV/Å on the stat structure; centre the net's output
    frc, ae = _Eager(d).forces_and_atom_energy(stat_struct)
    scale = float(f"{1.0 / float(np.sqrt(np.mean(frc**2))):.3g}")
    out_bias = mv["out_bias"][0, :, 0]
    bias_e = fv["bias_atom_e"][:, 0].astype(np.float64)
    at = stat_struct["atype"]
    net_part = ae - out_bias[at] - bias_e[at]
    for k, net in enumerate(d["fitting"]["nets"]["networks"]):
        vals = net_part if d["fitting"]["mixed_types"] else net_part[at == k]
        off = float(np.mean(vals))
        v = net["layers"][-1]["@variables"]
        v["w"] = (v["w"] * scale).astype(v["w"].dtype)
        v["b"] = ((v["b"] - off) * scale).astype(v["b"].dtype)
    return d, cfg, scale


def _dp_exe() -> str:
    return str(Path(sys.executable).with_name("dp"))


def convert(src: Path, dst: Path, timeout: int) -> dict:
    """`dp convert-backend src dst` in a fresh process; returns {ok, seconds, error}."""
    t0 = time.perf_counter()
    try:
        res = subprocess.run(
            [_dp_exe(), "convert-backend", str(src), str(dst)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=os.environ.copy(),
        )
        ok = res.returncode == 0 and dst.exists()
        err = None
        if not ok:
            lines = [ln.strip() for ln in (res.stderr + res.stdout).splitlines() if ln.strip()]
            exc = [i for i, ln in enumerate(lines) if re.match(r"^[\w.]+(Error|Exception|SymNode)\b.*:", ln)]
            if exc:  # the exception line, plus where it was raised (last frame above it)
                i = exc[-1]
                # the innermost deepmd frame says which model code could not be exported
                fr = [k for k in range(i) if lines[k].startswith("File ") and "/deepmd/" in lines[k]]
                where = f" [raised under {lines[fr[-1]]}: {lines[fr[-1] + 1]}]" if fr else ""
                err = lines[i] + where
            else:
                err = " | ".join(lines[-3:]) or f"exit code {res.returncode}"
    except subprocess.TimeoutExpired:
        ok, err = False, f"timed out after {timeout} s"
    out = {"ok": ok, "seconds": round(time.perf_counter() - t0, 1), "error": err}
    if ok and dst.suffix == ".pt2":
        out.update(pt2_meta(dst))
    return out


def pt2_meta(path: Path) -> dict:
    """Which lower schema the AOTInductor graph consumes, and whether it computes the
    per-atom virial (from the archive's metadata.json)."""
    with contextlib.suppress(Exception), zipfile.ZipFile(path) as z:
        md = [n for n in z.namelist() if n.endswith("extra/metadata.json")]
        if md:
            meta = json.loads(z.read(md[0]))
            return {k: meta.get(k) for k in ("lower_input_kind", "do_atomic_virial")}
    return {}


def saturation(dp_path: Path, s: dict) -> dict:
    from deepmd.infer import DeepPot

    stats: dict = {}
    with _activation_probe(stats), contextlib.redirect_stdout(io.StringIO()):
        dp = DeepPot(str(dp_path))
        e = dp.eval(s["coord"][None], s["cell"].reshape(1, 9), s["atype"], atomic=False)[0]
    return {
        "energy_numpy": float(np.asarray(e).ravel()[0]),
        "activations": {
            k: {
                "n": v["n"],
                "frac_abs_gt_3": v["abs_gt_3"] / max(v["n"], 1),
                "frac_above_silut_threshold": v["above_threshold"] / max(v["n"], 1),
            }
            for k, v in stats.items()
        },
    }


def build_models(work: Path, kinds: list[str], precisions: list[str], stat_struct: dict,
                 formats: list[str], convert_timeout: int, log) -> dict:
    import datetime as _dt

    import deepmd
    import deepmd.dpmodel.utils.serialization as dp_serialization
    import torch
    from deepmd.dpmodel.model.model import get_model
    from deepmd.dpmodel.utils.serialization import save_dp_model

    logging.getLogger("deepmd").setLevel(logging.ERROR)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

    # save_dp_model stamps the wall time into the file; pin it for reproducible files
    fixed = _dt.datetime(2025, 1, 1, tzinfo=_dt.timezone.utc)

    class _FixedDatetime(_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return fixed if tz is not None else fixed.replace(tzinfo=None)

    class _Mod:
        datetime = _FixedDatetime
        timezone = _dt.timezone

    dp_serialization.datetime = _Mod

    mdir = work / "models"
    mdir.mkdir(parents=True, exist_ok=True)
    out = {}
    for kind in kinds:
        d64 = cfg64 = scale = None
        for precision in precisions:
            name = model_name(kind, precision)
            meta_path = mdir / f"{name}.json"
            dp_path = mdir / f"{name}.dp"
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            cfg_now = json.loads(json.dumps(CONFIGS[kind](precision)))
            if not (meta.get("build_version") == BUILD_VERSION and meta.get("config") == cfg_now
                    and dp_path.exists()):
                t0 = time.perf_counter()
                if d64 is None:
                    log(f"[build] {kind}: building the float64 weights")
                    rng = np.random.default_rng(SEED + SEEDS[kind])
                    d64, cfg64, scale = build_f64_dict(kind, stat_struct, rng)
                if precision == "float64":
                    d, cfg = d64, cfg64
                else:
                    cfg = CONFIGS[kind](precision)
                    tmpl = get_model(copy.deepcopy(cfg)).serialize()
                    d = _copy_arrays(tmpl, d64)
                save_dp_model(
                    str(dp_path), {"backend": "DPModel", "model": d, "model_def_script": cfg, "@variables": {}}
                )
                log(f"[build] {name}.dp written; measuring activations with the NumPy backend")
                meta = dict(
                    build_version=BUILD_VERSION,
                    name=name,
                    kind=kind,
                    precision=precision,
                    config=cfg,
                    deepmd_version=deepmd.__version__,
                    torch_version=torch.__version__,
                    force_scale=scale,
                    saturation_on=f"water_{len(stat_struct['atype'])}",
                    **saturation(dp_path, stat_struct),
                    build_seconds=round(time.perf_counter() - t0, 1),
                    conversions={},
                )
                meta_path.write_text(json.dumps(meta, indent=1))
                for suf in ("pth", "pt2"):  # stale conversions
                    with contextlib.suppress(FileNotFoundError):
                        (mdir / f"{name}.{suf}").unlink()
            dp_hash = hashlib.sha256(dp_path.read_bytes()).hexdigest()[:16]
            for fmt in formats:
                dst = mdir / f"{name}.{fmt}"
                prev = meta["conversions"].get(fmt)
                if prev and prev.get("dp_sha") == dp_hash and (dst.exists() or not prev["ok"]):
                    if fmt == "pt2" and prev["ok"] and prev.get("lower_input_kind") is None:
                        prev.update(pt2_meta(dst))
                        meta_path.write_text(json.dumps(meta, indent=1))
                    continue
                log(f"[build] dp convert-backend {name}.dp {name}.{fmt} (AOTInductor compile may take minutes)"
                    if fmt == "pt2" else f"[build] dp convert-backend {name}.dp {name}.{fmt}")
                res = convert(dp_path, dst, convert_timeout)
                res["dp_sha"] = dp_hash
                meta["conversions"][fmt] = res
                meta_path.write_text(json.dumps(meta, indent=1))
                log(f"[build]   -> {'ok' if res['ok'] else 'FAILED: ' + str(res['error'])} ({res['seconds']} s)")
            out[name] = meta
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/halomd-bench"))
    ap.add_argument("--models", default="dpa3,se_e2_a")
    ap.add_argument("--precisions", default="float64,float32")
    ap.add_argument("--nmols", default="64,512", help="molecules per box (cubes): 64 -> 192 atoms")
    ap.add_argument("--formats", default="pth,pt2")
    ap.add_argument("--convert-timeout", type=int, default=3600)
    ap.add_argument("--summary", type=Path, help="write the build summary JSON here")
    args = ap.parse_args()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    nmols = [int(x) for x in args.nmols.split(",") if x]
    sinfo = write_structures(work, sorted(set(nmols) | {64}))
    small = np.load(sinfo[192]["npz"])
    stat_struct = {"coord": small["coord"], "atype": small["atype"], "cell": small["cell"]}
    minfo = build_models(
        work,
        [m for m in args.models.split(",") if m],
        [p for p in args.precisions.split(",") if p],
        stat_struct,
        [f for f in args.formats.split(",") if f],
        args.convert_timeout,
        log,
    )
    summary = {"structures": {str(k): v for k, v in sinfo.items()}, "models": minfo}
    if args.summary:
        args.summary.write_text(json.dumps(summary, indent=1))
    else:
        print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
