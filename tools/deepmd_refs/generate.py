#!/usr/bin/env python3
"""Generate DeePMD-kit reference fixtures for halomd's model-parity tests.

Usage (one reproducible command, seeded):

    /work/venv/bin/python tools/deepmd_refs/generate.py --out fixtures/deepmd

For every variant in variants.py:
  1. build the model with deepmd.dpmodel (seeded initialiser),
  2. replace statistics / residuals / biases by seeded non-trivial random values,
  3. rescale the last fitting layer so forces are realistic (rms |F| ~ 1 eV/A),
  4. save it with deepmd's own save_dp_model as models/NAME.dp (and .yaml),
  5. convert .dp -> .pth with deepmd's `dp convert-backend` entry point,
  6. evaluate with deepmd.infer.DeepPot (PyTorch backend): energy, atom energy,
     force, virial, atom virial (the eager PyTorch model where deepmd-kit 3.2.0
     cannot script the model; the NumPy backend for energy-only variants),
  7. cross-check the energy with the NumPy dpmodel backend (DeepPot on the .dp
     file, and on the .yaml when written).
See README.md for the output format.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as _dt
import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Keep the run light: the machine is shared (2 cores).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DP_INTRA_OP_PARALLELISM_THREADS", "1")
os.environ.setdefault("DP_INTER_OP_PARALLELISM_THREADS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("DP_INFER_BATCH_SIZE", "1024")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # keep tools/ free of __pycache__

from structures import build_structures, neighbor_distances  # noqa: E402
from variants import get_variants  # noqa: E402

import deepmd  # noqa: E402
import deepmd.dpmodel.descriptor.repflows as dp_repflows  # noqa: E402
import deepmd.dpmodel.utils.network as dp_network  # noqa: E402
import deepmd.dpmodel.utils.serialization as dp_serialization  # noqa: E402
import h5py  # noqa: E402
import torch  # noqa: E402
from deepmd.dpmodel.model.model import get_model as dp_get_model  # noqa: E402
from deepmd.dpmodel.utils.serialization import load_dp_model, save_dp_model  # noqa: E402
from deepmd.entrypoints.convert_backend import convert_backend  # noqa: E402
from deepmd.infer import DeepPot  # noqa: E402
from deepmd.pt.model.model import BaseModel as PtBaseModel  # noqa: E402
from deepmd.pt.utils.nlist import extend_input_and_build_neighbor_list  # noqa: E402

torch.set_num_threads(1)
logging.getLogger("deepmd").setLevel(logging.ERROR)

# save_dp_model stamps the current time into the file; pin it so that
# rerunning the generator reproduces the .dp/.yaml files byte for byte.
FIXED_TIME = _dt.datetime(2025, 1, 1, tzinfo=_dt.timezone.utc)


class _FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):  # noqa: ANN001, ANN206
        return FIXED_TIME if tz is not None else FIXED_TIME.replace(tzinfo=None)


class _FixedDatetimeModule:
    datetime = _FixedDatetime
    timezone = _dt.timezone


dp_serialization.datetime = _FixedDatetimeModule  # type: ignore[assignment]

TARGET_FORCE_RMS = 1.0  # eV/A, rms over all structures of a variant
F64_NUMPY_TOL = 1e-12  # |E_pt - E_numpy| / N for float64 models (asserted)


# --------------------------------------------------------------------------- utils
def walk_layers(obj, fn):
    """Call fn(layer_dict) for every serialized NativeLayer dict."""
    if isinstance(obj, dict):
        if obj.get("@class") == "Layer":
            fn(obj)
        for v in obj.values():
            walk_layers(v, fn)
    elif isinstance(obj, list):
        for v in obj:
            walk_layers(v, fn)


def randomize(d: dict, rng: np.random.Generator, variant: dict) -> None:
    """Give the serialized model non-trivial statistics, residuals and biases."""
    stock = variant.get("stats", "random") == "stock"
    desc = d["descriptor"]
    ntypes = len(d["type_map"])
    if not stock:
        # resnet time steps: init is 0.1 +- 0.001; spread them out
        def _idt(layer):
            v = layer["@variables"]
            if v.get("idt") is not None:
                v["idt"] = rng.normal(0.1, 0.05, v["idt"].shape).astype(v["idt"].dtype)

        walk_layers(d, _idt)
        if desc["type"] == "dpa3":
            var = desc["repflow_variable"]["@variables"]
            davg, dstd = var["davg"], var["dstd"]
            new_avg = np.zeros_like(davg)
            new_std = np.zeros_like(dstd)
            for t in range(ntypes):
                new_avg[t, :, 0] = rng.uniform(0.0, 0.15)
                new_std[t, :, 0] = rng.uniform(0.25, 0.45)
                new_std[t, :, 1:] = rng.uniform(0.2, 0.4)
            var["davg"], var["dstd"] = new_avg, new_std
            for layer in desc["repflow_variable"]["repflow_layers"]:
                lv = layer.get("@variables")
                if not lv:
                    continue
                # trained models drift away from the 0.1 initial value; larger
                # residuals also make the descriptor more geometry-sensitive
                for key in ("n_residual", "e_residual", "a_residual"):
                    lv[key] = [rng.normal(0.3, 0.1, r.shape).astype(r.dtype) for r in lv[key]]
        else:  # se_e2_a
            davg, dstd = desc["@variables"]["davg"], desc["@variables"]["dstd"]
            new_avg = np.zeros_like(davg)
            new_std = np.zeros_like(dstd)
            for t in range(ntypes):
                new_avg[t, :, 0] = rng.uniform(0.05, 0.25)
                new_std[t, :, 0] = rng.uniform(0.12, 0.3)
                new_std[t, :, 1:] = rng.uniform(0.08, 0.2)
            desc["@variables"]["davg"], desc["@variables"]["dstd"] = new_avg, new_std
    # model-level output statistics (always float64)
    mv = d["@variables"]
    if variant.get("big_out_bias"):
        mv["out_bias"] = rng.uniform(-400.0, -100.0, mv["out_bias"].shape)
    else:
        mv["out_bias"] = rng.uniform(-8.0, -1.0, mv["out_bias"].shape)
    mv["out_std"] = rng.uniform(0.5, 2.0, mv["out_std"].shape)
    fv = d["fitting"]["@variables"]
    fv["bias_atom_e"] = rng.uniform(-1.0, 1.0, fv["bias_atom_e"].shape).astype(fv["bias_atom_e"].dtype)
    # Damp the first-layer rows fed by fparam/aparam: with random weights they
    # would dominate the (weak) geometry dependence, and after the force
    # rescaling below atomic energies would swing by hundreds of eV.
    nd = d["fitting"]["dim_descrpt"]
    nfa = d["fitting"]["numb_fparam"] + d["fitting"]["numb_aparam"]
    if nfa:
        for net in d["fitting"]["nets"]["networks"]:
            w = net["layers"][0]["@variables"]["w"]
            w[nd : nd + nfa] *= 0.01
    for key, lo, hi in (
        ("fparam_avg", -0.5, 0.5),
        ("fparam_inv_std", 0.5, 2.0),
        ("aparam_avg", -0.5, 0.5),
        ("aparam_inv_std", 0.5, 2.0),
    ):
        if fv.get(key) is not None:
            fv[key] = rng.uniform(lo, hi, fv[key].shape).astype(fv[key].dtype)


def rescale_fitting(d: dict, cases_in, energy_only: bool = False) -> float:
    """Rescale the last fitting layer(s): rms |F| -> TARGET_FORCE_RMS over all
    cases, and shift the output bias so the fitting-net part of the atomic
    energy averages ~0 (atomic energies are then ~ out_bias + bias_atom_e +
    a few eV, instead of a large arbitrary constant times the scale)."""
    forces, nets = [], []
    fit = d["fitting"]
    excluded = set(d.get("atom_exclude_types", [])) | set(fit.get("exclude_types", []))
    out_bias = d["@variables"]["out_bias"][0, :, 0]
    bias_e = fit["@variables"]["bias_atom_e"][:, 0].astype(np.float64)
    eager = None if energy_only else EagerPt(d)
    for s, fp, ap in cases_in:
        if energy_only:
            ae = pt_atomic_energy(d, s, fp, ap)
        else:
            _, frc, _, ae, _ = eager.eval(s, fp, ap, atomic=False)
            frc, ae = frc[0], ae[0, :, 0]
            forces.append(frc)
        for t, e in zip(s["atype"], ae):
            if t not in excluded:
                nets.append((t, e - out_bias[t] - bias_e[t]))
    if energy_only:  # no forces available: aim at a ~1.5 eV spread of atomic energies
        target = 1.5 / max(float(np.std([e for _, e in nets])), 1e-12)
    else:
        target = TARGET_FORCE_RMS / float(np.sqrt(np.mean(np.concatenate(forces) ** 2)))
    scale = float(f"{np.clip(target, 0.02, 2000.0):.3g}")
    networks = fit["nets"]["networks"]
    for k, net in enumerate(networks):
        vals = [e for t, e in nets if fit["mixed_types"] or t == k]
        off = float(np.mean(vals)) if vals else 0.0
        v = net["layers"][-1]["@variables"]
        v["w"] = (v["w"] * scale).astype(v["w"].dtype)
        v["b"] = ((v["b"] - off) * scale).astype(v["b"].dtype)
        if fit["mixed_types"]:
            # one shared net: move the per-type part of the constant into
            # bias_atom_e so every type's atomic energy stays near its biases
            be = fit["@variables"]["bias_atom_e"]
            for t in range(be.shape[0]):
                vt = [e for tt, e in nets if tt == t]
                if vt:
                    be[t, 0] -= scale * (float(np.mean(vt)) - off)
    return scale


def case_inputs(variant, s, rng):
    """fparam / aparam arrays for one structure (None if not used)."""
    fit = variant["config"]["fitting_net"]
    nfp = fit.get("numb_fparam", 0)
    nap = fit.get("numb_aparam", 0)
    fparam = None
    if nfp:
        fparam = variant["fparam"][s["name"]]
        if fparam is not None:
            fparam = np.asarray(fparam, dtype=np.float64)
    aparam = None
    if nap:
        aparam = np.round(rng.uniform(-1.0, 1.0, (len(s["coord"]), nap)), 6)
    return fparam, aparam


class EagerPt:
    """The deepmd PyTorch model run eagerly (no TorchScript).

    Used (a) to choose the output scale and (b) as the evaluator for models
    whose `dp convert-backend` to .pth fails in deepmd-kit 3.2.0 (TorchScript
    cannot compile RepFlowLayer for update_style res_avg/res_incr). It runs the
    same forward that DeepPot runs through the scripted module.
    """

    def __init__(self, d: dict):
        self.model = PtBaseModel.deserialize(copy.deepcopy(d))
        self.model.eval()

    def eval(self, s: dict, fparam, aparam, atomic: bool = True):
        t = lambda x: None if x is None else torch.tensor(np.asarray(x)[None], dtype=torch.float64)  # noqa: E731
        coord = t(s["coord"])
        atype = torch.tensor(s["atype"][None], dtype=torch.int64)
        box = None if s["deepmd_cell"] is None else t(s["deepmd_cell"].reshape(9))
        out = self.model(coord, atype, box=box, fparam=t(fparam), aparam=t(aparam), do_atomic_virial=atomic)
        g = lambda k: out[k].detach().numpy()  # noqa: E731
        return (
            g("energy"),
            g("force"),
            g("virial"),
            g("atom_energy"),
            g("atom_virial") if atomic else None,
        )


def pt_atomic_energy(d: dict, s: dict, fparam, aparam) -> np.ndarray:
    """Atomic energies from the deepmd PyTorch model without any derivative
    (extended system + nlist built by deepmd.pt, then the atomic model)."""
    model = PtBaseModel.deserialize(copy.deepcopy(d))
    model.eval()
    t = lambda x: None if x is None else torch.tensor(np.asarray(x)[None], dtype=torch.float64)  # noqa: E731
    coord = t(s["coord"])
    atype = torch.tensor(s["atype"][None], dtype=torch.int64)
    box = None if s["deepmd_cell"] is None else t(s["deepmd_cell"].reshape(9))
    with torch.no_grad():
        ext, eat, mapping, nlist = extend_input_and_build_neighbor_list(
            coord, atype, model.get_rcut(), model.get_sel(), mixed_types=model.mixed_types(), box=box
        )
        nlist = model.format_nlist(ext, eat, nlist, extra_nlist_sort=model.need_sorted_nlist_for_lower())
        ret = model.atomic_model.forward_common_atomic(ext, eat, nlist, mapping=mapping, fparam=t(fparam), aparam=t(aparam))
    return ret["energy"].numpy()[0, :, 0]


@contextlib.contextmanager
def activation_probe(stats: dict):
    """Record pre-activation statistics of the NumPy backend (saturation check)."""
    orig_net = dp_network.get_activation_fn
    orig_rf = dp_repflows.get_activation_fn

    def patched(name):
        fn = orig_net(name)
        key = name.lower()
        if key in ("none", "linear"):
            return fn

        def wrapped(x):
            z = np.asarray(x)
            st = stats.setdefault(key, {"n": 0, "sat": 0, "above_T": 0})
            st["n"] += z.size
            st["sat"] += int(np.sum(np.abs(z) > 3.0))
            if key.startswith(("silut", "custom_silu")):
                thr = float(key.split(":")[-1]) if ":" in key else 3.0
                st["above_T"] += int(np.sum(z >= thr))
            return fn(x)

        return wrapped

    dp_network.get_activation_fn = patched
    dp_repflows.get_activation_fn = patched
    try:
        yield
    finally:
        dp_network.get_activation_fn = orig_net
        dp_repflows.get_activation_fn = orig_rf


def sel_report(variant, s) -> dict:
    """Neighbour counts, sel truncation and tie check at truncation boundaries."""
    desc = variant["config"]["descriptor"]
    coord, cell, pbc, atype = s["coord"], s["cell"], s["pbc"], s["atype"]
    rep: dict = {}
    if desc["type"] == "dpa3":
        rf = desc["repflow"]
        nd = neighbor_distances(coord, cell, pbc, rf["e_rcut"])
        cnt = [len(x) for x in nd]
        ca = [sum(1 for dd, _ in x if dd < rf["a_rcut"]) for x in nd]
        rep["max_neighbors_e_rcut"] = max(cnt)
        rep["max_neighbors_a_rcut"] = max(ca)
        rep["e_sel_binding"] = max(cnt) > rf["e_sel"]
        rep["a_sel_binding"] = max(ca) > rf["a_sel"]
        for x in nd:
            for k, lim in ((rf["e_sel"], rf["e_rcut"]), (rf["a_sel"], rf["a_rcut"])):
                if len(x) > k and x[k][0] < lim and x[k][0] - x[k - 1][0] < 1e-6:
                    raise RuntimeError(f"{variant['name']}/{s['name']}: distance tie at sel boundary {k}")
    else:
        sel = desc["sel"]
        nd = neighbor_distances(coord, cell, pbc, desc["rcut"])
        rep["max_neighbors_rcut"] = max(len(x) for x in nd)
        per_type_max = [0] * len(sel)
        binding = False
        nsel = sum(sel)
        for x in nd:
            # deepmd keeps the sum(sel) nearest neighbours overall first, then
            # the nearest sel[t] of each type among those
            if len(x) > nsel and x[nsel][0] - x[nsel - 1][0] < 1e-6:
                raise RuntimeError(f"{variant['name']}/{s['name']}: tie at the sum(sel) boundary")
            if len(x) > nsel:
                binding = True
            for t, k in enumerate(sel):
                per_type_max[t] = max(per_type_max[t], sum(1 for _, j in x if atype[j] == t))
                xt = [dd for dd, j in x[:nsel] if atype[j] == t]
                if len(xt) > k:
                    binding = True
                    if xt[k] - xt[k - 1] < 1e-6:
                        raise RuntimeError(f"{variant['name']}/{s['name']}: tie at type-{t} sel boundary")
        rep["max_neighbors_per_type"] = per_type_max
        rep["sel_binding"] = binding
    # deepmd's backends order model-level pair exclusion and sel truncation
    # differently (see README); keep the fixtures unambiguous.
    if variant["config"].get("pair_exclude_types") and any(
        rep.get(k) for k in ("e_sel_binding", "a_sel_binding", "sel_binding")
    ):
        raise RuntimeError(f"{variant['name']}/{s['name']}: pair_exclude_types with a binding sel")
    return rep


def run_dp_convert_cli(src: Path, dst: Path) -> None:
    """`dp convert-backend src dst` in a subprocess; raise with its last error line."""
    dp_exe = Path(sys.executable).with_name("dp")
    res = subprocess.run(
        [str(dp_exe), "convert-backend", str(src), str(dst)], capture_output=True, text=True, env=os.environ.copy()
    )
    if res.returncode != 0 or not dst.exists():
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        idx = max((i for i, ln in enumerate(lines) if "Error" in ln), default=len(lines) - 1)
        err = " ".join(ln.strip() for ln in lines[idx : idx + 2]) if lines else "unknown error"
        raise RuntimeError(f"`dp convert-backend` failed: {err}")


def wrap(s: dict) -> np.ndarray:
    """Coordinates wrapped into the DeePMD cell along the periodic axes."""
    if s["deepmd_cell"] is None:
        return s["coord"]
    cell = s["deepmd_cell"]
    frac = s["coord"] @ np.linalg.inv(cell)
    for ax, p in enumerate(s["pbc"]):
        if p:
            frac[:, ax] -= np.floor(frac[:, ax])
    return frac @ cell


def f(x):
    """numpy -> nested python floats (json writes repr => exact round trip)."""
    return np.asarray(x, dtype=np.float64).tolist()


# --------------------------------------------------------------------------- main
def build_variant(variant, structs, out_dir: Path, tmp: Path, log) -> dict:
    name = variant["name"]
    rng = np.random.default_rng(1000 + variant["seed"])
    cfg = copy.deepcopy(variant["config"])
    cfg["descriptor"]["seed"] = variant["seed"]
    cfg["fitting_net"]["seed"] = variant["seed"] + 5000
    model = dp_get_model(copy.deepcopy(cfg))
    head = variant.get("head")
    if head is not None:
        model.set_case_embd(head)
    d = model.serialize()
    randomize(d, rng, variant)

    cases_in = []
    for sname in variant["structures"]:
        s = structs[sname]
        fparam, aparam = case_inputs(variant, s, rng)
        cases_in.append((s, fparam, aparam))

    # realistic force magnitude: rescale the last fitting layer
    energy_only = bool(variant.get("energy_only"))
    scale = rescale_fitting(d, cases_in, energy_only)

    model_dir = out_dir / "models"
    dp_path = model_dir / f"{name}.dp"
    data = {
        "backend": "DPModel",
        "model": d,
        "model_def_script": cfg,
        "@variables": {},
    }
    save_dp_model(str(dp_path), data)
    yaml_path = None
    if variant.get("yaml"):
        yaml_path = model_dir / f"{name}.yaml"
        save_dp_model(str(yaml_path), data)

    # .dp -> .pth exactly as `dp convert-backend models/NAME.dp NAME.pth`
    pth = tmp / f"{name}.pth"
    act_stats: dict = {}
    eager = None if energy_only else EagerPt(d)
    evaluator = "deepmd.infer.DeepPot on the .pth from `dp convert-backend` (PyTorch backend)"
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            if energy_only:
                raise RuntimeError("energy-only variant")
            try:
                convert_backend(INPUT=str(dp_path), OUTPUT=str(pth))
            except Exception:  # noqa: BLE001
                # A failed TorchScript compile can leave this process's JIT
                # state dirty; retry once with the real CLI in a fresh process.
                run_dp_convert_cli(dp_path, pth)
            dp_pt = DeepPot(str(pth))
        except Exception as exc:  # noqa: BLE001
            msg = [re.sub(r"0x[0-9a-fA-F]+", "0x...", ln) for ln in str(exc).strip().splitlines() if ln.strip()]
            dp_pt = None
            evaluator = (
                "ENERGY ONLY: deepmd.infer.DeepPot on the .dp (NumPy dpmodel backend); cross-checked "
                "against the deepmd PyTorch atomic model run without derivatives. Forces/virials are "
                "null because deepmd-kit 3.2.0's PyTorch backend raises on atom_ener models."
            ) if energy_only else (
                "PyTorch backend run eagerly (deepmd.pt model forward, do_atomic_virial=True): "
                f"`dp convert-backend NAME.dp NAME.pth` fails in deepmd-kit {deepmd.__version__}: "
                f"{type(exc).__name__}: {msg[0] if msg else ''}"
            )
        with activation_probe(act_stats):  # probe closures are bound at load time
            dp_np = DeepPot(str(dp_path))
        dp_yaml = DeepPot(str(yaml_path)) if yaml_path else None

    prec_d = cfg["descriptor"].get("precision", "float64")
    prec_f = cfg["fitting_net"].get("precision", "float64")
    is_f64 = prec_d == "float64" and prec_f == "float64"

    cases = []
    max_de_numpy = 0.0
    max_dae_numpy = 0.0
    max_force = 0.0
    max_jit_eager = 0.0
    max_av_unwrapped = 0.0
    for s, fparam, aparam in cases_in:
        n = len(s["coord"])
        cells = None if s["deepmd_cell"] is None else s["deepmd_cell"].reshape(1, 9)
        kw = {}
        if fparam is not None:
            kw["fparam"] = fparam[None]
        if aparam is not None:
            kw["aparam"] = aparam[None]
        if energy_only:
            with activation_probe(act_stats):
                en, _, _, aen, _ = dp_np.eval(s["coord"][None], cells, s["atype"], atomic=True, **kw)
            aep = pt_atomic_energy(d, s, fparam, aparam)
            de = abs(float(en[0, 0]) - float(aep.sum())) / n
            dae = float(np.max(np.abs(aep - aen[0, :, 0])))
            max_de_numpy, max_dae_numpy = max(max_de_numpy, de), max(max_dae_numpy, dae)
            if de > F64_NUMPY_TOL:
                raise RuntimeError(f"{name}/{s['name']}: numpy vs pt atomic |dE|/N = {de:.3e}")
            cases.append(
                {
                    "structure": s["name"],
                    "coord": f(s["coord"]),
                    "cell": None if s["cell"] is None else f(s["cell"]),
                    "pbc": list(s["pbc"]),
                    "deepmd_cell": None if s["deepmd_cell"] is None else f(s["deepmd_cell"]),
                    "atype": [int(t) for t in s["atype"]],
                    "fparam": None if fparam is None else f(fparam),
                    "aparam": None if aparam is None else f(aparam),
                    "energy": float(en[0, 0]),
                    "atom_energy": f(aen[0, :, 0]),
                    "force": None,
                    "virial": None,
                    "atom_virial": None,
                    "energy_numpy": float(en[0, 0]),
                    "energy_pt_atomic": float(aep.sum()),
                    "neighbors": sel_report(variant, s),
                }
            )
            continue
        ee, fe, ve, aee, ave = eager.eval(s, fparam, aparam)
        if dp_pt is not None:
            # DeepPot(.pth) returns wrong per-atom virials for DPA3 when atoms lie
            # outside the cell (see README), so it is fed wrapped coordinates;
            # all outputs are invariant under wrapping. The unwrapped result is
            # only recorded for information.
            e, frc, vir, ae, av = dp_pt.eval(wrap(s)[None], cells, s["atype"], atomic=True, **kw)
            av_unwrapped = dp_pt.eval(s["coord"][None], cells, s["atype"], atomic=True, **kw)[4]
            max_av_unwrapped = max(max_av_unwrapped, float(np.max(np.abs(av_unwrapped - av))))
            djit = max(
                float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(a)))))
                for a, b in ((e, ee), (frc, fe), (vir, ve), (ae, aee), (av, ave))
            )
            max_jit_eager = max(max_jit_eager, djit)
            if is_f64 and djit > 1e-12:
                raise RuntimeError(f"{name}/{s['name']}: DeepPot(.pth) vs eager PyTorch differ by {djit:.2e}")
        else:
            e, frc, vir, ae, av = ee, fe, ve, aee, ave
        with activation_probe(act_stats):  # NativeLayer looks its activation up per call
            en, _, _, aen, _ = dp_np.eval(s["coord"][None], cells, s["atype"], atomic=True, **kw)
        de = abs(float(e[0, 0]) - float(en[0, 0])) / n
        dae = float(np.max(np.abs(ae[0, :, 0] - aen[0, :, 0])))
        max_de_numpy = max(max_de_numpy, de)
        max_dae_numpy = max(max_dae_numpy, dae)
        if is_f64 and de > F64_NUMPY_TOL:
            raise RuntimeError(f"{name}/{s['name']}: pt vs numpy |dE|/N = {de:.3e} > {F64_NUMPY_TOL}")
        if dp_yaml is not None:
            ey = dp_yaml.eval(s["coord"][None], cells, s["atype"], atomic=False, **kw)[0]
            if float(ey[0, 0]) != float(en[0, 0]):
                raise RuntimeError(f"{name}/{s['name']}: .yaml and .dp energies differ")
        fr = frc[0]
        max_force = max(max_force, float(np.max(np.linalg.norm(fr, axis=1))))
        # sanity: forces sum to zero, atom energies / virials sum to totals
        assert np.max(np.abs(fr.sum(0))) < (1e-9 if is_f64 else 1e-3), fr.sum(0)
        assert abs(ae[0, :, 0].sum() - e[0, 0]) < (1e-9 if is_f64 else 1e-3) * max(1.0, abs(e[0, 0]))
        assert np.max(np.abs(av[0].sum(0) - vir[0])) < (1e-9 if is_f64 else 1e-3)
        case = {
            "structure": s["name"],
            "coord": f(s["coord"]),
            "cell": None if s["cell"] is None else f(s["cell"]),
            "pbc": list(s["pbc"]),
            "deepmd_cell": None if s["deepmd_cell"] is None else f(s["deepmd_cell"]),
            "atype": [int(t) for t in s["atype"]],
            "fparam": None if fparam is None else f(fparam),
            "aparam": None if aparam is None else f(aparam),
            "energy": float(e[0, 0]),
            "atom_energy": f(ae[0, :, 0]),
            "force": f(fr),
            "virial": f(vir[0]),
            "atom_virial": f(av[0]),
            "energy_numpy": float(en[0, 0]),
            "neighbors": sel_report(variant, s),
        }
        cases.append(case)

    # small json-friendly saturation summary
    sat = {
        k: {
            "count": v["n"],
            "frac_abs_gt_3": round(v["sat"] / max(v["n"], 1), 4),
            **({"frac_ge_threshold": round(v["above_T"] / max(v["n"], 1), 4)} if k.startswith(("silut", "custom_silu")) else {}),
        }
        for k, v in sorted(act_stats.items())
    }
    desc_type = cfg["descriptor"]["type"]
    out = {
        "name": name,
        "model": f"models/{name}.dp",
        "model_yaml": None if yaml_path is None else f"models/{name}.yaml",
        "precision": "float64" if is_f64 else "float32",
        "precision_detail": {"descriptor": prec_d, "fitting": prec_f},
        "descriptor": desc_type,
        "type_map": cfg["type_map"],
        "head": head,
        "options": {
            "covers": variant["covers"],
            "config": cfg,
            "stats": variant.get("stats", "random"),
        },
        "generator": {
            "deepmd_kit": deepmd.__version__,
            "torch": torch.__version__,
            "evaluator": evaluator,
            "fitting_last_layer_scale": scale,
            "pt_script_vs_eager_max_rel_diff": max_jit_eager if dp_pt is not None else None,
            "deeppot_unwrapped_input_atom_virial_max_abs_diff": max_av_unwrapped if dp_pt is not None else None,
            "energy_only": energy_only,
            "pt_vs_numpy_max_abs_dE_per_atom": max_de_numpy,
            "pt_vs_numpy_max_abs_d_atom_energy": max_dae_numpy,
            "max_force_norm": max_force,
            "activation_preact_stats_numpy": sat,
        },
        "cases": cases,
    }
    (out_dir / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")
    log(
        f"{name:24s} {desc_type:8s} {out['precision']:7s} scale={scale:<8g} "
        f"max|F|={max_force:6.3f}  pt-np |dE|/N={max_de_numpy:.1e} |dAE|={max_dae_numpy:.1e}  "
        f"size={dp_path.stat().st_size // 1024}KB"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="output directory, e.g. fixtures/deepmd")
    ap.add_argument("--only", nargs="*", help="generate only these variants (debugging)")
    args = ap.parse_args()
    out_dir: Path = args.out
    (out_dir / "models").mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    def log(msg):
        print(f"[{time.time() - t0:6.1f}s] {msg}", flush=True)

    structs = build_structures()
    variants = get_variants()
    if args.only:
        variants = [v for v in variants if v["name"] in args.only]
    index = []
    with tempfile.TemporaryDirectory() as tmpd:
        for v in variants:
            out = build_variant(v, structs, out_dir, Path(tmpd), log)
            index.append(
                {
                    "name": out["name"],
                    "json": f"{out['name']}.json",
                    "model": out["model"],
                    "model_yaml": out["model_yaml"],
                    "descriptor": out["descriptor"],
                    "precision": out["precision"],
                    "structures": [c["structure"] for c in out["cases"]],
                }
            )
    if not args.only:
        from make_bad import make_bad

        make_bad(out_dir)
        idx = {
            "generator": "tools/deepmd_refs/generate.py",
            "command": "/work/venv/bin/python tools/deepmd_refs/generate.py --out fixtures/deepmd",
            "versions": {
                "deepmd_kit": deepmd.__version__,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "h5py": h5py.__version__,
                "python": sys.version.split()[0],
            },
            "tolerances": {
                "float64": {"energy_per_atom_abs": 1e-10, "force_abs": 1e-9, "virial_abs": 1e-9},
                "float32": {"rel": 1e-5},
            },
            "structures": {
                k: {"description": s["description"], "natoms": len(s["coord"]), "min_distance": s["min_distance"]}
                for k, s in structs.items()
            },
            "models": index,
        }
        (out_dir / "index.json").write_text(json.dumps(idx, indent=1) + "\n")
    log("done")


if __name__ == "__main__":
    main()
