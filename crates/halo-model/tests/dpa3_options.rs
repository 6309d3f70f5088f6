//! DPA3 model validation (every unsupported or inconsistent option is an error naming its
//! field), input validation, the exchange protocol, and thread-count determinism.

mod dpa3_common;
use dpa3_common::*;
use halo_core::{Exchange, ExchangeError, MappingExchange, RowsMut};
use halo_model::descriptor::dpa3::Dpa3;
use halo_model::descriptor::DescriptorInput;
use halo_model::import::ModelFile;
use serde_json::Value;

/// An edit of the descriptor tree.
type Edit = Box<dyn FnOnce(&mut Value)>;

/// Loads the default model after `edit`, returning the error text (or "ok").
fn load_edited(edit: impl FnOnce(&mut Value)) -> String {
    let file = edited_model(&data_dir().join("default.yaml"), |t| {
        edit(&mut t["descriptor"])
    });
    let d = file.root().get("descriptor").unwrap();
    match Dpa3::<f64>::from_dict(&d) {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unedited_model_loads() {
    assert_eq!(load_edited(|_| {}), "ok");
}

#[test]
fn unsupported_and_inconsistent_options_are_errors_naming_the_field() {
    let cases: Vec<(&str, Edit)> = vec![
        (
            "descriptor.add_chg_spin_ebd",
            Box::new(|d| d["add_chg_spin_ebd"] = Value::Bool(true)),
        ),
        (
            "descriptor.use_econf_tebd",
            Box::new(|d| d["use_econf_tebd"] = Value::Bool(true)),
        ),
        (
            "descriptor.repflow_args.foo",
            Box::new(|d| d["repflow_args"]["foo"] = Value::Bool(true)),
        ),
        (
            "descriptor.repflow_args.update_style",
            Box::new(|d| d["repflow_args"]["update_style"] = "res_foo".into()),
        ),
        (
            "descriptor.repflow_args.use_dynamic_sel",
            Box::new(|d| d["repflow_args"]["use_dynamic_sel"] = Value::Bool(true)),
        ),
        (
            "descriptor.repflow_args.sequential_update",
            Box::new(|d| {
                d["repflow_args"]["sequential_update"] = Value::Bool(true);
                d["repflow_args"]["update_style"] = "res_avg".into();
            }),
        ),
        (
            "descriptor.repflow_args.a_sel",
            Box::new(|d| d["repflow_args"]["a_sel"] = 50.into()),
        ),
        (
            "descriptor.activation_function",
            Box::new(|d| d["activation_function"] = "swish".into()),
        ),
        (
            "descriptor.@version",
            Box::new(|d| d["@version"] = 3.into()),
        ),
        ("descriptor.type", Box::new(|d| d["type"] = "dpa2".into())),
        (
            "descriptor.repflow_variable.repflow_layers[1].n_dim",
            Box::new(|d| d["repflow_variable"]["repflow_layers"][1]["n_dim"] = 7.into()),
        ),
        (
            "descriptor.repflow_variable.repflow_layers[0].smooth_edge_update",
            Box::new(|d| {
                d["repflow_variable"]["repflow_layers"][0]["smooth_edge_update"] = Value::Bool(true)
            }),
        ),
        (
            "descriptor.repflow_variable.repflow_layers[0].node_self_mlp.activation_function",
            Box::new(|d| {
                d["repflow_variable"]["repflow_layers"][0]["node_self_mlp"]["activation_function"] =
                    "tanh".into()
            }),
        ),
        (
            "descriptor.repflow_variable.repflow_layers[0].@variables.n_residual",
            Box::new(|d| {
                let v = &mut d["repflow_variable"]["repflow_layers"][0]["@variables"]["n_residual"];
                v.as_array_mut().unwrap().pop();
            }),
        ),
        (
            "descriptor.repflow_variable.repflow_layers[0].@variables.e_residual[0]",
            Box::new(|d| {
                let v = &mut d["repflow_variable"]["repflow_layers"][0]["@variables"]["e_residual"]
                    [0]["value"];
                v.as_array_mut().unwrap().pop();
            }),
        ),
        (
            "descriptor.repflow_variable.repflow_layers",
            Box::new(|d| {
                d["repflow_variable"]["repflow_layers"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
        ),
        (
            "descriptor.repflow_variable.@variables.dstd",
            Box::new(|d| {
                let v = &mut d["repflow_variable"]["@variables"]["dstd"]["value"][0][0];
                v[0] = 0.0.into();
            }),
        ),
        (
            "descriptor.exclude_types",
            Box::new(|d| d["exclude_types"] = serde_json::json!([[0, 5]])),
        ),
        (
            "descriptor.repflow_args.e_rcut",
            Box::new(|d| d["repflow_args"]["e_rcut_smth"] = 9.0.into()),
        ),
        (
            "descriptor.repflow_args.axis_neuron",
            Box::new(|d| d["repflow_args"]["axis_neuron"] = 40.into()),
        ),
        (
            "descriptor.type_embedding.padding",
            Box::new(|d| d["type_embedding"]["padding"] = Value::Bool(false)),
        ),
    ];
    for (field, edit) in cases {
        let msg = load_edited(edit);
        assert!(
            msg.starts_with(field),
            "expected an error at `{field}`, got: {msg}"
        );
    }
}

#[test]
fn precision_must_match_unless_asked_otherwise() {
    let file = ModelFile::from_yaml_file(&data_dir().join("default.yaml")).unwrap();
    let d = file.root().get("descriptor").unwrap();
    let e = Dpa3::<f32>::from_dict(&d).unwrap_err().to_string();
    assert!(e.starts_with("descriptor.precision"), "{e}");
    assert!(Dpa3::<f32>::from_dict_any_precision(&d).is_ok());
}

#[test]
fn accessors_and_comm_manifest() {
    let fx = load(&data_dir().join("multi_edge_msg.json"));
    let m = fx.dpa3::<f64>();
    assert_eq!(m.rcut(), 4.0);
    assert_eq!(m.nnei(), 20);
    assert_eq!(m.dim_out(), 8);
    let slots = m.comm_slots();
    assert_eq!(slots.len(), 2);
    assert_eq!(slots[1].name, "repflow.node_ebd.layer1");
    assert_eq!(slots[1].width, 8);
    assert_eq!(slots[1].dtype, halo_core::DType::F64);
    assert!(slots.iter().all(|s| s.forward && s.reverse));
    let fx = load(&data_dir().join("concat_tebd_bias.json"));
    assert_eq!(fx.dpa3::<f64>().dim_out(), 16);
}

/// Records the exchange calls.
struct Counting {
    inner: MappingExchange,
    calls: Vec<(&'static str, usize)>,
}

impl Exchange for Counting {
    fn nloc(&self) -> usize {
        self.inner.nloc()
    }
    fn nall(&self) -> usize {
        self.inner.nall()
    }
    fn forward(&mut self, rows: RowsMut<'_>, width: usize) -> Result<(), ExchangeError> {
        self.calls.push(("forward", width));
        self.inner.forward(rows, width)
    }
    fn reverse(&mut self, rows: RowsMut<'_>, width: usize) -> Result<(), ExchangeError> {
        self.calls.push(("reverse", width));
        self.inner.reverse(rows, width)
    }
}

#[test]
fn exchange_protocol_one_forward_per_layer_and_reverse_for_layers_above_0() {
    let fx = load(&data_dir().join("res_avg.json")); // 3 layers
    let m = fx.dpa3::<f64>();
    let fr = &fx.frames[0];
    let mut ex = Counting {
        inner: fr.exchange(),
        calls: Vec::new(),
    };
    let (d, st) = m.forward(&fr.input(), &mut ex).unwrap();
    assert_eq!(ex.calls, vec![("forward", 8); 3]);
    ex.calls.clear();
    m.backward(&fr.input(), &st, &d, &mut ex).unwrap();
    assert_eq!(ex.calls, vec![("reverse", 8); 2]);
}

#[test]
fn exchange_errors_propagate() {
    struct Failing(MappingExchange);
    impl Exchange for Failing {
        fn nloc(&self) -> usize {
            self.0.nloc()
        }
        fn nall(&self) -> usize {
            self.0.nall()
        }
        fn forward(&mut self, _: RowsMut<'_>, _: usize) -> Result<(), ExchangeError> {
            Err(ExchangeError("peer lost".into()))
        }
        fn reverse(&mut self, _: RowsMut<'_>, _: usize) -> Result<(), ExchangeError> {
            Err(ExchangeError("peer lost".into()))
        }
    }
    let fx = load(&data_dir().join("default.json"));
    let m = fx.dpa3::<f64>();
    let fr = &fx.frames[0];
    let e = m
        .forward(&fr.input(), &mut Failing(fr.exchange()))
        .unwrap_err();
    assert!(e.0.contains("peer lost"));
}

#[test]
fn malformed_inputs_are_errors() {
    let fx = load(&data_dir().join("default.json"));
    let m = fx.dpa3::<f64>();
    let fr = &fx.frames[0];
    let mut ex = fr.exchange();
    let short = &fr.nlist[..fr.nlist.len() - 1];
    let bad = DescriptorInput {
        nlist: short,
        ..fr.input()
    };
    assert!(m.forward(&bad, &mut ex).is_err());
    let mut nl = fr.nlist.clone();
    nl[3] = fr.coords.len() as i32;
    let bad = DescriptorInput {
        nlist: &nl,
        ..fr.input()
    };
    assert!(m.forward(&bad, &mut ex).unwrap_err().0.contains("outside"));
    let wide = DescriptorInput {
        nnei: 21,
        ..fr.input()
    };
    assert!(m.forward(&wide, &mut ex).is_err());
    let (d, st) = m.forward(&fr.input(), &mut ex).unwrap();
    assert!(m.backward(&fr.input(), &st, &d[1..], &mut ex).is_err());
}

/// A random open cluster with a brute-force distance-sorted neighbour list.
fn cluster(
    n: usize,
    box_len: f64,
    rcut: f64,
    nnei: usize,
    seed: u64,
) -> (Vec<[f64; 3]>, Vec<i32>, Vec<i32>) {
    let mut s = seed;
    let mut rnd = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut pos: Vec<[f64; 3]> = Vec::new();
    while pos.len() < n {
        let p = [rnd() * box_len, rnd() * box_len, rnd() * box_len];
        let ok = pos.iter().all(|q| {
            let d2: f64 = (0..3).map(|x| (p[x] - q[x]).powi(2)).sum();
            d2 > 1.0
        });
        if ok {
            pos.push(p);
        }
    }
    let types: Vec<i32> = (0..n).map(|i| (i % 3 == 0) as i32).collect();
    let mut nlist = vec![-1i32; n * nnei];
    for i in 0..n {
        let mut cand: Vec<(f64, usize)> = (0..n)
            .filter(|&j| j != i)
            .map(|j| {
                (
                    (0..3)
                        .map(|x| (pos[j][x] - pos[i][x]).powi(2))
                        .sum::<f64>()
                        .sqrt(),
                    j,
                )
            })
            .filter(|(r, _)| *r < rcut)
            .collect();
        cand.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for (k, (_, j)) in cand.into_iter().take(nnei).enumerate() {
            nlist[i * nnei + k] = j as i32;
        }
    }
    (pos, types, nlist)
}

#[test]
fn results_are_bit_identical_for_any_thread_count() {
    for name in ["default.json", "sequential_smooth_compress.json"] {
        let fx = load(&data_dir().join(name));
        let m = fx.dpa3::<f64>();
        let n = 90;
        let (pos, types, nlist) = cluster(n, 9.0, m.rcut(), m.nnei(), 7);
        let input = DescriptorInput {
            coords: &pos,
            types: &types,
            nloc: n,
            nlist: &nlist,
            nnei: m.nnei(),
        };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut ex = MappingExchange::new((0..n).collect(), n);
                let (d, st) = m.forward(&input, &mut ex).unwrap();
                let c: Vec<f64> = (0..d.len())
                    .map(|k| ((k * 37 % 11) as f64 - 5.0) * 0.1)
                    .collect();
                let g = m.backward(&input, &st, &c, &mut ex).unwrap();
                (d, g)
            })
        };
        let (d1, g1) = run(1);
        let (d3, g3) = run(3);
        assert!(
            d1.iter().zip(&d3).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name}: D differs"
        );
        assert!(
            g1.iter()
                .flatten()
                .zip(g3.iter().flatten())
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name}: gradient differs"
        );
        assert!(g1.iter().flatten().any(|v| v.abs() > 1e-6));
    }
}

#[test]
fn ghost_images_and_owners_agree_with_a_folded_gradient() {
    // Moving an owner together with all its periodic images equals the sum of their
    // gradients: checks that ghost-row node gradients reach the owners through `reverse`.
    let fx = load(&data_dir().join("default.json"));
    let m = fx.dpa3::<f64>();
    let fr = &fx.frames[0]; // periodic
    let c: Vec<f64> = (0..fr.nloc * m.dim_out())
        .map(|k| ((k * 13 % 7) as f64 - 3.0) * 0.2)
        .collect();
    let mut ex = fr.exchange();
    let (_, st) = m.forward(&fr.input(), &mut ex).unwrap();
    let g = m.backward(&fr.input(), &st, &c, &mut ex).unwrap();
    let loss = |coords: &[[f64; 3]]| -> f64 {
        let input = DescriptorInput {
            coords,
            ..fr.input()
        };
        let (d, _) = m.forward(&input, &mut fr.exchange()).unwrap();
        d.iter().zip(&c).map(|(a, b)| a * b).sum()
    };
    let h = 1e-5;
    for owner in 0..fr.nloc {
        for x in 0..3 {
            let mut folded = 0.0;
            let mut cp = fr.coords.clone();
            let mut cm = fr.coords.clone();
            for (t, &o) in fr.mapping.iter().enumerate() {
                if o == owner {
                    folded += g[t][x];
                    cp[t][x] += h;
                    cm[t][x] -= h;
                }
            }
            let fd = (loss(&cp) - loss(&cm)) / (2.0 * h);
            assert!(
                (fd - folded).abs() < 1e-8,
                "owner {owner} x{x}: fd {fd} vs {folded}"
            );
        }
    }
}

#[test]
fn empty_frames_and_isolated_atoms() {
    let fx = load(&data_dir().join("default.json"));
    let m = fx.dpa3::<f64>();
    // No atoms at all.
    let input = DescriptorInput {
        coords: &[],
        types: &[],
        nloc: 0,
        nlist: &[],
        nnei: m.nnei(),
    };
    let mut ex = MappingExchange::new(vec![], 0);
    let (d, st) = m.forward(&input, &mut ex).unwrap();
    assert!(d.is_empty());
    assert!(m.backward(&input, &st, &d, &mut ex).unwrap().is_empty());
    // Two atoms beyond the cutoff: same descriptor as each alone, zero gradient.
    let coords = [[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]];
    let types = [0, 1];
    let nlist = vec![-1; 2 * m.nnei()];
    let input = DescriptorInput {
        coords: &coords,
        types: &types,
        nloc: 2,
        nlist: &nlist,
        nnei: m.nnei(),
    };
    let mut ex = MappingExchange::new(vec![0, 1], 2);
    let (d, st) = m.forward(&input, &mut ex).unwrap();
    assert!(d.iter().all(|v| v.is_finite()));
    assert_ne!(d[..8], d[8..], "types differ, so must the rows");
    let g = m.backward(&input, &st, &[1.0; 16], &mut ex).unwrap();
    assert_eq!(g, vec![[0.0; 3]; 2]);
}
