"""Model variants for the DeePMD reference fixtures.

Each variant is a training-input style model config (what `dp train` reads under
"model", for deepmd.dpmodel.model.model.get_model) plus generator settings:

  seed        integer seed for deepmd's initialiser and the generator's RNG
  structures  which structures (see structures.py) the model is evaluated on
  stats       "random" (non-trivial random davg/dstd, residuals, idt) or "stock"
              (keep deepmd's initial values: DPA3 davg=0, dstd=0.3, residuals 0.1)
  head        for dim_case_embd > 0: the case (head) index set with set_case_embd
  fparam/aparam  per-structure values (null fparam => the model's default_fparam)
  yaml        also save the model as models/NAME.yaml
  covers      human-readable list of what the variant exercises (copied to json)
"""

from __future__ import annotations

import copy

TYPE_MAP4 = ["H", "C", "N", "O"]


def _dpa3(repflow_over=None, **desc_over):
    repflow = dict(
        n_dim=16,
        e_dim=8,
        a_dim=8,
        nlayers=2,
        e_rcut=5.0,
        e_rcut_smth=3.5,
        e_sel=40,
        a_rcut=4.0,
        a_rcut_smth=3.0,
        a_sel=20,
        axis_neuron=4,
    )
    repflow.update(repflow_over or {})
    desc = dict(type="dpa3", repflow=repflow, activation_function="silu", precision="float64")
    desc.update(desc_over)
    return desc


def _fit(**over):
    fit = dict(type="ener", neuron=[16, 16], activation_function="tanh", precision="float64", resnet_dt=True)
    fit.update(over)
    return fit


def _model(desc, fit, **model_over):
    m = dict(type_map=list(TYPE_MAP4), descriptor=desc, fitting_net=fit)
    m.update(model_over)
    return m


VARIANTS: list[dict] = [
    dict(
        name="dpa3_base",
        seed=101,
        config=_model(_dpa3(), _fit()),
        structures=["cubic", "triclinic", "smallcell", "slab", "cluster"],
        covers=[
            "dpa3 defaults: res_residual, update_angle, optim_update=True, smooth_edge_update=False",
            "polynomial switch (use_exp_switch=False)",
            "activation silu (descriptor), tanh (fitting)",
            "a_sel=20 (not binding), e_sel=40 (not binding)",
            "random davg/dstd, residuals, idt, out_bias, bias_atom_e",
        ],
    ),
    dict(
        name="dpa3_silut_exp_smooth",
        seed=102,
        config=_model(
            _dpa3(
                dict(
                    use_exp_switch=True,
                    e_rcut_smth=4.4,
                    a_rcut_smth=3.5,
                    smooth_edge_update=True,
                    edge_init_use_dist=True,
                    a_sel=12,
                ),
                activation_function="silut:1.5",
                concat_output_tebd=True,
            ),
            _fit(activation_function="silut:1.5"),
        ),
        structures=["triclinic", "smallcell", "cluster"],
        covers=[
            "activation silut:1.5 (both branches hit)",
            "exponential switch (use_exp_switch=True)",
            "smooth_edge_update=True",
            "edge_init_use_dist=True",
            "concat_output_tebd=True",
            "a_sel=12 binding (more neighbours within a_rcut than a_sel)",
        ],
    ),
    dict(
        name="dpa3_dpa31_like",
        seed=103,
        config=_model(
            _dpa3(
                dict(
                    a_compress_rate=1,
                    a_compress_e_rate=2,
                    a_compress_use_split=True,
                    use_exp_switch=True,
                    e_rcut_smth=4.4,
                    a_rcut_smth=3.5,
                    smooth_edge_update=True,
                    use_dynamic_sel=True,
                    sel_reduce_factor=4.0,
                    e_sel=80,
                    a_sel=24,
                    nlayers=3,
                ),
                activation_function="custom_silu:2.0",
            ),
            _fit(activation_function="custom_silu:2.0", dim_case_embd=5),
        ),
        head=3,
        structures=["cubic", "triclinic", "slab"],
        covers=[
            "DPA-3.1-like: a_compress_rate=1, a_compress_e_rate=2, a_compress_use_split=True",
            "use_dynamic_sel=True, sel_reduce_factor=4.0 (normalisers e_sel/4, a_sel/4)",
            "exponential switch, smooth_edge_update, nlayers=3",
            "activation custom_silu:2.0 (alias of silut)",
            "dim_case_embd=5 with head index 3 (case_embd = one-hot[3] stored in the file)",
        ],
    ),
    dict(
        name="dpa3_compress_linear",
        seed=104,
        config=_model(
            _dpa3(
                dict(a_compress_rate=2, a_compress_e_rate=1, a_compress_use_split=False, optim_update=False, axis_neuron=2),
                activation_function="tanh",
            ),
            _fit(activation_function="tanh"),
        ),
        structures=["cubic", "smallcell", "slab"],
        covers=[
            "a_compress_rate=2, a_compress_e_rate=1, a_compress_use_split=False (a_compress_n/e_linear layers)",
            "optim_update=False (concatenated-input linear path)",
            "axis_neuron=2",
            "activation tanh",
        ],
    ),
    dict(
        name="dpa3_res_avg",
        seed=105,
        config=_model(
            _dpa3(dict(update_style="res_avg", a_sel=12), activation_function="gelu"),
            _fit(activation_function="gelu", neuron=[16, 32]),
        ),
        structures=["triclinic", "slab", "cluster"],
        covers=[
            "update_style=res_avg (no residual variables in the file)",
            "activation gelu (tanh approximation)",
            "fitting neuron [16,32] (second layer doubles width: residual concat [x,x])",
            "a_sel=12 binding",
        ],
    ),
    dict(
        name="dpa3_res_incr",
        seed=106,
        config=_model(
            _dpa3(dict(update_style="res_incr", n_multi_edge_message=2), activation_function="relu"),
            _fit(activation_function="softplus"),
        ),
        structures=["cubic", "smallcell", "cluster"],
        covers=[
            "update_style=res_incr",
            "n_multi_edge_message=2",
            "activation relu (descriptor), softplus (fitting)",
        ],
    ),
    dict(
        name="dpa3_no_angle",
        seed=107,
        config=_model(
            _dpa3(dict(update_angle=False, nlayers=3), activation_function="softplus", env_protection=0.05),
            _fit(activation_function="sigmoid"),
        ),
        structures=["triclinic", "smallcell", "slab"],
        covers=[
            "update_angle=False (no angle layers in the file)",
            "nlayers=3",
            "env_protection=0.05",
            "activation softplus (descriptor), sigmoid (fitting)",
        ],
    ),
    dict(
        name="dpa3_sequential",
        seed=108,
        config=_model(
            _dpa3(dict(sequential_update=True, nlayers=3, a_sel=12), activation_function="sigmoid", use_loc_mapping=False),
            _fit(activation_function="tanh"),
        ),
        structures=["cubic", "triclinic", "cluster"],
        covers=[
            "sequential_update=True (with smooth_edge_update=False padding from the updated edge)",
            "use_loc_mapping=False (math identical)",
            "activation sigmoid",
            "a_sel=12 binding",
        ],
    ),
    dict(
        name="dpa3_multi_edge_none",
        seed=109,
        config=_model(
            _dpa3(dict(n_multi_edge_message=3), activation_function="none", use_tebd_bias=True, concat_output_tebd=True),
            _fit(activation_function="silu"),
        ),
        structures=["cubic", "slab", "cluster"],
        covers=[
            "n_multi_edge_message=3",
            "activation none (descriptor is a polynomial of the env features), silu (fitting)",
            "use_tebd_bias=True (type embedding layer has a bias)",
            "concat_output_tebd=True",
        ],
    ),
    dict(
        name="dpa3_fparam_aparam",
        seed=110,
        config=_model(
            _dpa3(dict(smooth_edge_update=True)),
            _fit(
                numb_fparam=2,
                numb_aparam=3,
                default_fparam=[0.7, -1.3],
                activation_function="silu",
            ),
        ),
        fparam={"cubic": [1.25, -0.4], "triclinic": None, "slab": [0.3, 2.2]},
        aparam="random",
        structures=["cubic", "triclinic", "slab"],
        covers=[
            "numb_fparam=2 with fparam_avg/fparam_inv_std (normalised input)",
            "default_fparam=[0.7,-1.3]: the triclinic case passes fparam=null and uses it",
            "numb_aparam=3 with aparam_avg/aparam_inv_std",
        ],
    ),
    dict(
        name="dpa3_exclusions",
        seed=111,
        config=_model(
            _dpa3(exclude_types=[[1, 1], [2, 3]]),
            _fit(exclude_types=[3]),
            pair_exclude_types=[[0, 1]],
            atom_exclude_types=[2],
        ),
        structures=["cubic", "triclinic", "cluster"],
        covers=[
            "model pair_exclude_types=[[0,1]] (excluded neighbour entries -> -1); sel NOT binding here "
            "on purpose: deepmd backends disagree on pair exclusion vs sel truncation (see README)",
            "descriptor exclude_types=[[1,1],[2,3]] (nlist entries -> -1 inside the descriptor)",
            "model atom_exclude_types=[2] (atom energy of type 2 zeroed after out_bias)",
            "fitting exclude_types=[3] (fitting output zeroed BEFORE out_bias: e_i = out_bias[3])",
        ],
    ),
    dict(
        name="dpa3_f32",
        seed=112,
        config=_model(
            _dpa3(
                dict(
                    use_exp_switch=True,
                    e_rcut_smth=4.4,
                    a_rcut_smth=3.5,
                    smooth_edge_update=True,
                    edge_init_use_dist=True,
                    a_compress_rate=1,
                    a_compress_e_rate=2,
                    a_compress_use_split=True,
                ),
                activation_function="silut:2.5",
                precision="float32",
            ),
            _fit(activation_function="silut:2.5", precision="float32"),
        ),
        big_out_bias=True,
        structures=["cubic", "triclinic", "slab"],
        covers=[
            "float32 descriptor and fitting",
            "activation silut:2.5",
            "exp switch, smooth_edge_update, edge_init_use_dist, a_compress split",
            "large out_bias (|out_bias| ~ 100-400 eV; added in float64)",
        ],
    ),
    dict(
        name="dpa3_f32_desc_f64_fit",
        seed=113,
        config=_model(
            _dpa3(dict(a_sel=12), activation_function="tanh", precision="float32"),
            _fit(activation_function="tanh", precision="float64"),
        ),
        structures=["smallcell", "slab", "cluster"],
        covers=[
            "mixed precision: float32 descriptor, float64 fitting",
            "activation tanh",
        ],
    ),
    dict(
        name="dpa3_stock_truncated",
        seed=114,
        config=_model(
            _dpa3(dict(e_sel=24, a_sel=8), use_tebd_bias=True, exclude_types=[[0, 2]]),
            _fit(),
        ),
        stats="stock",
        structures=["cubic", "triclinic", "smallcell"],
        covers=[
            "stock statistics: davg=0, dstd=0.3, residuals const 0.1 (as in a freshly trained model)",
            "e_sel=24 binding (neighbours beyond the 24 nearest are dropped)",
            "a_sel=8 binding",
            "descriptor exclude_types=[[0,2]] with binding sels: excluded entries become -1 holes "
            "AFTER sorting/truncation (they still occupy e_sel/a_sel slots)",
            "use_tebd_bias=True",
        ],
    ),
    dict(
        name="dpa3_tiny",
        seed=115,
        config=_model(
            _dpa3(dict(n_dim=8, e_dim=4, a_dim=4, e_sel=36, a_sel=12, axis_neuron=2)),
            _fit(neuron=[8]),
        ),
        yaml=True,
        structures=["cubic", "slab", "cluster"],
        covers=[
            "tiny dpa3 (n_dim 8, e_dim 4, a_dim 4) also saved as models/dpa3_tiny.yaml",
            "fitting with a single hidden layer",
        ],
    ),
    # ---------------------------------------------------------------- se_e2_a
    dict(
        name="se_a_two_side",
        seed=201,
        config=_model(
            dict(
                type="se_e2_a",
                rcut=4.5,
                rcut_smth=0.5,
                sel=[18, 18, 10, 8],
                neuron=[6, 12, 24],
                axis_neuron=3,
                resnet_dt=True,
                type_one_side=False,
                exclude_types=[[0, 2]],
                activation_function="tanh",
                precision="float64",
            ),
            _fit(neuron=[12, 12], activation_function="tanh"),
            pair_exclude_types=[[1, 3]],
        ),
        structures=["cubic", "triclinic", "smallcell", "slab", "cluster"],
        covers=[
            "se_e2_a type_one_side=False (one embedding net per (centre, neighbour) type pair)",
            "resnet_dt=True, neuron [6,12,24] (doubling layers: idt * act(xW+b) + [x,x])",
            "descriptor exclude_types=[[0,2]] (env-mat rows of excluded pairs zeroed, not -davg/dstd)",
            "model pair_exclude_types=[[1,3]] (nlist entries -> -1, i.e. padded rows -davg/dstd)",
            "per-type fitting nets (mixed_types=False), bias_atom_e + out_bias",
            "rcut_smth=0.5",
        ],
    ),
    dict(
        name="se_a_one_side",
        seed=202,
        config=_model(
            dict(
                type="se_e2_a",
                rcut=5.0,
                rcut_smth=2.0,
                sel=[8, 7, 6, 6],
                neuron=[6, 12, 24],
                axis_neuron=3,
                resnet_dt=False,
                type_one_side=True,
                activation_function="gelu",
                precision="float64",
            ),
            _fit(neuron=[20, 20], activation_function="softplus", numb_aparam=1),
            atom_exclude_types=[0],
        ),
        aparam="random",
        structures=["cubic", "triclinic", "slab"],
        covers=[
            "se_e2_a type_one_side=True (one embedding net per neighbour type)",
            "resnet_dt=False, activation gelu (descriptor), softplus (fitting)",
            "sel=[8,7,6,6] binding per type section (truncation after sorting)",
            "numb_aparam=1",
            "model atom_exclude_types=[0]",
        ],
    ),
    dict(
        name="se_a_f32",
        seed=203,
        config=_model(
            dict(
                type="se_e2_a",
                rcut=4.8,
                rcut_smth=1.0,
                sel=[14, 14, 10, 10],
                neuron=[6, 12],
                axis_neuron=3,
                resnet_dt=True,
                type_one_side=True,
                activation_function="tanh",
                precision="float32",
            ),
            _fit(neuron=[12, 12], activation_function="tanh", precision="float32", numb_fparam=1),
        ),
        fparam={"cubic": [0.8], "triclinic": [-0.25], "cluster": [1.5]},
        big_out_bias=True,
        yaml=True,
        structures=["cubic", "triclinic", "cluster"],
        covers=[
            "float32 se_e2_a and fitting, also saved as models/se_a_f32.yaml (float32 arrays in YAML)",
            "numb_fparam=1",
            "large out_bias (added in float64)",
        ],
    ),
]


# atom_ener (remove_vaccum_contribution) cannot be evaluated with forces by
# deepmd-kit 3.2.0's PyTorch backend (RuntimeError: in-place op in the fitting,
# eager and TorchScript alike), so these two variants are ENERGY-ONLY fixtures
# evaluated with DeePMD's NumPy dpmodel backend (force/virial = null).
VARIANTS += [
    dict(
        name="dpa3_atom_ener",
        seed=116,
        energy_only=True,
        config=_model(
            _dpa3(dict(n_dim=8, e_dim=4, a_dim=4, e_sel=36, a_sel=12, axis_neuron=2)),
            _fit(neuron=[8], numb_fparam=1, atom_ener=[None, -2.0, None, None]),
        ),
        fparam={"cubic": [0.6], "cluster": [-1.1]},
        structures=["cubic", "cluster"],
        covers=[
            "ENERGY ONLY (forces/virials null): atom_ener=[null,-2.0,null,null] on a mixed_types "
            "(DPA3) fitting => FitNet([0...0, fparam]) is subtracted from EVERY atom's energy; "
            "the atom_ener values themselves are not used at inference",
            "numb_fparam=1 (the fparam is part of the vacuum input)",
        ],
    ),
    dict(
        name="se_a_atom_ener",
        seed=204,
        energy_only=True,
        config=_model(
            dict(
                type="se_e2_a",
                rcut=4.5,
                rcut_smth=1.0,
                sel=[12, 12, 10, 10],
                neuron=[6, 12],
                axis_neuron=3,
                type_one_side=True,
                precision="float64",
            ),
            _fit(neuron=[12, 12], atom_ener=[-0.5, None]),
        ),
        structures=["triclinic", "slab"],
        covers=[
            "ENERGY ONLY (forces/virials null): atom_ener=[-0.5, null] on per-type fitting nets "
            "with ntypes=4 => the vacuum term FitNet_t(0) is subtracted for types 0, 2 and 3 "
            "(type 1 has null; types beyond the list length count as 'subtract')",
        ],
    ),
]


def get_variants() -> list[dict]:
    return copy.deepcopy(VARIANTS)
