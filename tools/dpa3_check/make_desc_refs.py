"""Descriptor-level DPA3 reference fixtures for halomd's Rust DPA3 (crates/halo-model).

For each option variant this builds a small `deepmd.dpmodel` DescrptDPA3 with seeded random
weights (non-zero, per-channel residuals; weights rounded to 6 decimals so the files stay
small), saves it in `save_dp_model`'s YAML layout (flow style) as `<name>.yaml`, evaluates `DescrptDPA3.call` on a few
small structures (periodic and open, one with a virtual type -1 atom) and writes the inputs
(extended coordinates, types, mapping, mixed nlist) and the descriptor to `<name>.json`.

Run:  /work/venv/bin/python tools/dpa3_check/make_desc_refs.py
Writes: crates/halo-model/tests/data/dpa3_desc/*.{yaml,json}
"""

import copy
import json
from pathlib import Path

import numpy as np
from deepmd.dpmodel.descriptor.dpa3 import DescrptDPA3, RepFlowArgs
from deepmd.dpmodel.utils.nlist import extend_input_and_build_neighbor_list
import yaml
from deepmd.dpmodel.utils.serialization import traverse_model_dict

OUT = Path(__file__).resolve().parents[2] / "crates/halo-model/tests/data/dpa3_desc"

BASE = dict(
    n_dim=8,
    e_dim=6,
    a_dim=4,
    nlayers=2,
    e_rcut=4.0,
    e_rcut_smth=3.0,
    e_sel=20,
    a_rcut=3.0,
    a_rcut_smth=2.2,
    a_sel=6,
    axis_neuron=2,
)

# name -> (repflow overrides, descriptor kwargs, extra options)
VARIANTS = {
    "default": ({}, {}, {}),
    "smooth_dist_exp_silut": (
        dict(smooth_edge_update=True, edge_init_use_dist=True, use_exp_switch=True),
        dict(activation_function="custom_silu:3.0"),
        {},
    ),
    "compress_split": (
        dict(a_compress_rate=1, a_compress_e_rate=2, a_compress_use_split=True),
        dict(activation_function="silut:1.5"),
        {},
    ),
    "compress_linear_nooptim": (
        dict(a_compress_rate=2, a_compress_e_rate=1, a_compress_use_split=False, optim_update=False),
        dict(activation_function="tanh"),
        {},
    ),
    "dynamic_sel": (
        dict(use_dynamic_sel=True, smooth_edge_update=True, sel_reduce_factor=2.5, e_sel=24, a_sel=8),
        {},
        {},
    ),
    "res_avg": (dict(update_style="res_avg", nlayers=3), dict(activation_function="gelu"), {}),
    "res_incr": (dict(update_style="res_incr"), dict(activation_function="softplus"), {}),
    "no_angle": (dict(update_angle=False), dict(activation_function="sigmoid"), {}),
    "multi_edge_msg": (dict(n_multi_edge_message=3), dict(activation_function="relu"), {}),
    "sequential": (
        dict(sequential_update=True, nlayers=3),
        {},
        {},
    ),
    "sequential_smooth_compress": (
        dict(sequential_update=True, smooth_edge_update=True, a_compress_rate=1, a_compress_e_rate=2,
             a_compress_use_split=True, use_exp_switch=True),
        dict(activation_function="silut:10.0"),
        {},
    ),
    "concat_tebd_bias": ({}, dict(concat_output_tebd=True, use_tebd_bias=True), {}),
    "exclude_protect": ({}, dict(exclude_types=[[0, 1]], env_protection=0.1), dict(no_virtual=True)),
    "davg_dstd_truncated": (dict(e_sel=9, a_sel=4), {}, dict(random_stats=True)),
    "float32": (
        dict(smooth_edge_update=True, a_compress_rate=1, a_compress_e_rate=2, a_compress_use_split=True,
             use_exp_switch=True),
        dict(precision="float32", activation_function="custom_silu:3.0"),
        {},
    ),
}


def rounded(x: np.ndarray) -> np.ndarray:
    return np.round(x.astype(np.float64), 6).astype(x.dtype)


def randomize(data, rng, random_stats: bool):
    """Round every array; give residuals random non-zero per-channel values."""

    def walk(node, key=None):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("n_residual", "e_residual", "a_residual") and isinstance(v, list):
                    node[k] = [
                        rounded((rng.uniform(0.1, 0.7, size=r.shape) * rng.choice([-1, 1], size=r.shape)).astype(r.dtype))
                        for r in v
                    ]
                elif isinstance(v, np.ndarray):
                    node[k] = rounded(v)
                else:
                    walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)

    walk(data)
    var = data["repflow_variable"]["@variables"]
    if random_stats:
        davg = var["davg"]
        var["davg"] = rounded((rng.normal(size=davg.shape) * 0.05).astype(davg.dtype))
        var["dstd"] = rounded(rng.uniform(0.2, 0.5, size=davg.shape).astype(davg.dtype))
    return data


def save_flow_yaml(path: Path, model_dict: dict) -> None:
    """`save_dp_model`'s YAML layout (inline `np.ndarray` nodes), written in flow style to stay
    small."""
    tree = traverse_model_dict(
        model_dict,
        lambda x: (
            {
                "@class": "np.ndarray",
                "@is_variable": True,
                "@version": 1,
                "dtype": x.dtype.name,
                "value": x.tolist(),
            }
            if isinstance(x, np.ndarray)
            else x
        ),
    )
    with open(path, "w") as f:
        yaml.safe_dump({"software": "deepmd-kit", **tree}, f, default_flow_style=True, width=1 << 30)


def structures(rng, ntypes: int, no_virtual: bool):
    out = []
    # periodic triclinic box, images included
    cell = np.array([[5.6, 0.0, 0.0], [0.7, 5.3, 0.0], [-0.4, 0.5, 5.9]])
    n = 9
    while True:
        frac = rng.uniform(size=(n, 3))
        pos = frac @ cell
        ok = True
        for i in range(n):
            for j in range(i):
                for s in np.ndindex(3, 3, 3):
                    d = pos[i] - pos[j] + (np.array(s) - 1) @ cell
                    if np.linalg.norm(d) < 1.0:
                        ok = False
        if ok:
            break
    types = rng.integers(0, ntypes, size=n)
    types[0], types[1] = 0, 1
    out.append(("periodic", pos, types, cell))
    # open cluster, maybe with a virtual atom
    m = 7
    while True:
        pos = rng.uniform(-2.2, 2.2, size=(m, 3))
        dd = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + 10 * np.eye(m)
        if dd.min() > 0.9:
            break
    types = rng.integers(0, ntypes, size=m)
    types[0], types[1] = 1, 0
    if not no_virtual:
        types[3] = -1
    out.append(("cluster", pos, types, None))
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for vi, (name, (rf_over, d_kw, extra)) in enumerate(VARIANTS.items()):
        rng = np.random.default_rng(1000 + vi)
        rf = dict(BASE)
        rf.update(rf_over)
        ntypes = 2
        kw = dict(precision="float64", activation_function="silu", type_map=["O", "H"])
        kw.update(d_kw)
        d0 = DescrptDPA3(ntypes, RepFlowArgs(**rf), seed=77 + vi, **kw)
        data = randomize(d0.serialize(), rng, extra.get("random_stats", False))
        desc = DescrptDPA3.deserialize(copy.deepcopy(data))
        save_flow_yaml(OUT / f"{name}.yaml", {"descriptor": copy.deepcopy(data)})
        frames = []
        for sname, pos, types, cell in structures(rng, ntypes, extra.get("no_virtual", False)):
            coord = pos.reshape(1, -1)
            atype = types.reshape(1, -1)
            box = None if cell is None else cell.reshape(1, 9)
            ext_coord, ext_atype, mapping, nlist = extend_input_and_build_neighbor_list(
                coord, atype, desc.get_rcut(), desc.get_sel(), mixed_types=True, box=box
            )
            out = desc.call(ext_coord.reshape(1, -1), ext_atype, nlist, mapping)
            dsc = np.asarray(out[0], dtype=np.float64)[0]
            nloc = len(types)
            frames.append(
                dict(
                    name=sname,
                    nloc=nloc,
                    nall=int(ext_atype.shape[1]),
                    coord_ext=[float(x) for x in np.asarray(ext_coord).reshape(-1)],
                    atype_ext=[int(x) for x in np.asarray(ext_atype).reshape(-1)],
                    mapping=[int(x) for x in np.asarray(mapping).reshape(-1)],
                    nlist=[int(x) for x in np.asarray(nlist).reshape(-1)],
                    nnei=int(nlist.shape[-1]),
                    dim_out=int(dsc.shape[-1]),
                    descriptor=[float(x) for x in dsc.reshape(-1)],
                )
            )
        meta = dict(
            variant=name,
            model=f"{name}.yaml",
            precision=kw["precision"],
            repflow_args=rf,
            descriptor_kwargs={k: v for k, v in kw.items() if k != "type_map"},
            frames=frames,
        )
        with open(OUT / f"{name}.json", "w") as f:
            json.dump(meta, f, separators=(",", ":"))
        print(name, [(fr["name"], fr["nloc"], fr["nall"]) for fr in frames])


if __name__ == "__main__":
    main()
