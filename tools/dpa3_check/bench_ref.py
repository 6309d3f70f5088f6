"""Benchmark inputs and a DeePMD-kit reference timing for halomd's DPA3 descriptor.

Builds a production-size DPA3 (n_dim 128, e_dim 64, a_dim 32, 6 layers, e_sel 120, a_sel 30,
e_rcut 6, a_rcut 4, a_compress 1/2/split, smooth edge update, exp switch, silut:10, as
examples/water/dpa3 of DeePMD-kit) with random weights, a water box, and times DeePMD-kit's
PyTorch descriptor forward + backward (∂(Σ c·D)/∂x) on CPU.

Run:  /work/venv/bin/python tools/dpa3_check/bench_ref.py OUTDIR [NMOL] [PRECISION] [THREADS]
Writes OUTDIR/bench_model.yaml and OUTDIR/bench_frame.json (same layout as the descriptor
fixtures, plus the DeePMD timing and descriptor).
"""

import copy
import json
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from make_desc_refs import save_flow_yaml  # noqa: E402

from deepmd.dpmodel.descriptor.dpa3 import DescrptDPA3, RepFlowArgs  # noqa: E402
from deepmd.dpmodel.utils.nlist import extend_input_and_build_neighbor_list  # noqa: E402


def water_box(nmol: int, rng):
    """Molecules on a jittered cubic grid at ~1 g/cm³ (30 Å³ per molecule)."""
    side = int(np.ceil(nmol ** (1 / 3)))
    L = (30.0 * nmol) ** (1 / 3)
    a = L / side
    pos, types = [], []
    k = 0
    for ix in range(side):
        for iy in range(side):
            for iz in range(side):
                if k == nmol:
                    break
                o = (np.array([ix, iy, iz]) + 0.5 + rng.uniform(-0.1, 0.1, 3)) * a
                v = rng.normal(size=3)
                v /= np.linalg.norm(v)
                w = np.cross(v, rng.normal(size=3))
                w /= np.linalg.norm(w)
                th = np.deg2rad(104.5) / 2
                h1 = o + 0.9572 * (np.cos(th) * v + np.sin(th) * w)
                h2 = o + 0.9572 * (np.cos(th) * v - np.sin(th) * w)
                pos += [o, h1, h2]
                types += [0, 1, 1]
                k += 1
    return np.array(pos), np.array(types), np.eye(3) * L


def main() -> None:
    out = Path(sys.argv[1])
    nmol = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    precision = sys.argv[3] if len(sys.argv) > 3 else "float32"
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    rf = RepFlowArgs(
        n_dim=128, e_dim=64, a_dim=32, nlayers=6, e_rcut=6.0, e_rcut_smth=5.3, e_sel=120,
        a_rcut=4.0, a_rcut_smth=3.5, a_sel=30, a_compress_rate=1, a_compress_e_rate=2,
        a_compress_use_split=True, update_angle=True, smooth_edge_update=True,
        edge_init_use_dist=True, use_exp_switch=True,
    )
    d = DescrptDPA3(2, rf, precision=precision, activation_function="silut:10.0", seed=3,
                    type_map=["O", "H"])
    data = d.serialize()
    for layer in data["repflow_variable"]["repflow_layers"]:
        for k in ("n_residual", "e_residual", "a_residual"):
            layer["@variables"][k] = [
                rng.uniform(0.05, 0.3, size=r.shape).astype(r.dtype) for r in layer["@variables"][k]
            ]
    save_flow_yaml(out / "bench_model.yaml", {"descriptor": copy.deepcopy(data)})

    pos, types, cell = water_box(nmol, rng)
    ext_coord, ext_atype, mapping, nlist = extend_input_and_build_neighbor_list(
        pos.reshape(1, -1), types.reshape(1, -1), 6.0, [120], mixed_types=True,
        box=cell.reshape(1, 9),
    )
    nloc = len(types)
    # Trim ghosts no local atom references (DeePMD keeps all 27·nloc images).
    ext_coord = np.asarray(ext_coord).reshape(-1, 3)
    used = np.zeros(ext_coord.shape[0], bool)
    used[:nloc] = True
    nl = np.asarray(nlist)[0]
    used[nl[nl >= 0]] = True
    keep = np.nonzero(used)[0]
    remap = -np.ones(ext_coord.shape[0], int)
    remap[keep] = np.arange(len(keep))
    ext_coord = ext_coord[keep]
    ext_atype = np.asarray(ext_atype)[0][keep]
    mapping = np.asarray(mapping)[0][keep]
    nl = np.where(nl >= 0, remap[np.maximum(nl, 0)], -1)
    nreal = int((nl >= 0).sum())

    import torch
    from deepmd.pt.model.descriptor.dpa3 import DescrptDPA3 as PtDPA3

    torch.set_num_threads(threads)
    pt = PtDPA3.deserialize(data)
    pt.eval()
    c = torch.tensor(rng.normal(size=(1, nloc, 128)))
    times, cpu = [], []
    for rep in range(3):
        xc = torch.tensor(ext_coord.reshape(1, -1), dtype=torch.float64, requires_grad=True)
        c0 = time.process_time()
        t0 = time.perf_counter()
        desc = pt(xc, torch.tensor(ext_atype.reshape(1, -1)), torch.tensor(nl.reshape(1, nloc, -1)),
                  torch.tensor(mapping.reshape(1, -1)))[0]
        loss = (desc.double() * c).sum()
        loss.backward()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    dsc = desc.detach().double().numpy()[0]
    grad = xc.grad.numpy().reshape(-1, 3)
    print(f"nloc {nloc} nall {len(keep)} real edges/atom {nreal / nloc:.1f} "
          f"deepmd pt {precision} threads {threads}: fwd+bwd wall {min(times):.3f} s, "
          f"cpu {min(cpu):.3f} s ({min(cpu) / nloc * 1e3:.2f} cpu-ms/atom)")
    frame = dict(
        name="water", nloc=nloc, nall=int(len(keep)),
        coord_ext=[float(x) for x in ext_coord.reshape(-1)],
        atype_ext=[int(x) for x in ext_atype], mapping=[int(x) for x in mapping],
        nlist=[int(x) for x in nl.reshape(-1)], nnei=120, dim_out=128,
        descriptor=[float(x) for x in dsc.reshape(-1)],
        coef=[float(x) for x in c.numpy().reshape(-1)],
        grad=[float(x) for x in grad.reshape(-1)],
        deepmd_seconds=min(times), deepmd_cpu_seconds=min(cpu), deepmd_threads=threads,
    )
    meta = dict(variant="bench", model="bench_model.yaml", precision=precision, frames=[frame])
    with open(out / "bench_frame.json", "w") as f:
        json.dump(meta, f)


if __name__ == "__main__":
    main()
