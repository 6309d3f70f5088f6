//! `EnergyModel::summary` and the layout accessors describe the file, checked against the
//! training configuration each fixture was built from.

mod common;

use common::references;
use halo_model::EnergyModel;
use halo_nlist::Sel;
use serde_json::Value;

/// Whether the summary text lists option `key` with value `value`.
fn lists(text: &str, key: &str, value: &str) -> bool {
    text.lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == [key, value])
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// Parameters of a DeePMD-kit MLP: weights, biases, and `idt` where `resnet_dt` applies
/// (`out == in` or `out == 2·in`).
fn mlp_params(n_in: usize, widths: &[usize], resnet_dt: bool) -> usize {
    let mut n = 0;
    let mut i = n_in;
    for &o in widths {
        n += i * o + o;
        if resnet_dt && (o == i || o == 2 * i) {
            n += o;
        }
        i = o;
    }
    n
}

#[test]
fn se_e2_a_summary_follows_the_config() {
    let mut checked = 0;
    for r in references()
        .into_iter()
        .filter(|r| r.descriptor == "se_e2_a")
    {
        let m = EnergyModel::load(&r.model).unwrap();
        let s = m.summary();
        let d = &r.config["descriptor"];
        let f = &r.config["fitting_net"];
        let type_map: Vec<String> = r.cases[0].system.type_names.clone();
        let ntypes = type_map.len();
        assert_eq!(s.type_map, type_map);
        assert_eq!(m.type_map(), type_map.as_slice());
        assert_eq!(s.descriptor, "se_e2_a");
        assert_eq!(m.rcut(), d["rcut"].as_f64().unwrap());
        let sel = usizes(&d["sel"]);
        assert_eq!(m.nnei_layout(), Sel::Typed(sel));
        assert!(m.comm_slots().is_empty());
        let neuron = usizes(&d["neuron"]);
        let axis = d["axis_neuron"].as_u64().unwrap() as usize;
        assert_eq!(s.dim_descrpt, neuron.last().unwrap() * axis);
        let one_side = d["type_one_side"].as_bool().unwrap();
        let resnet = |v: &Value| v["resnet_dt"].as_bool().unwrap_or(false);
        let emb =
            mlp_params(1, &neuron, resnet(d)) * if one_side { ntypes } else { ntypes * ntypes };
        let fit_in = s.dim_descrpt
            + f["numb_fparam"].as_u64().unwrap_or(0) as usize
            + f["numb_aparam"].as_u64().unwrap_or(0) as usize;
        let mut fit_widths = usizes(&f["neuron"]);
        let hidden = mlp_params(fit_in, &fit_widths, resnet(f));
        let last = fit_widths.pop().unwrap() + 1;
        assert_eq!(s.n_params, emb + ntypes * (hidden + last), "{}", r.name);
        let text = s.to_string();
        assert!(
            text.contains(&format!("se_e2_a ({}), rcut", s.descriptor_precision)),
            "{text}"
        );
        assert!(
            lists(&text, "type_one_side", &one_side.to_string()),
            "{text}"
        );
        checked += 1;
    }
    assert!(checked > 0, "no se_e2_a fixtures");
}

#[test]
fn dpa3_summary_names_layers_and_exchanges() {
    let r = references()
        .into_iter()
        .find(|r| r.name == "dpa3_tiny")
        .expect("fixture dpa3_tiny");
    let m = EnergyModel::load(&r.model).unwrap();
    let rf = &r.config["descriptor"]["repflow"];
    let s = m.summary();
    assert_eq!(s.descriptor, "dpa3");
    assert_eq!(
        m.nnei_layout(),
        Sel::Mixed(rf["e_sel"].as_u64().unwrap() as usize)
    );
    assert_eq!(m.rcut(), rf["e_rcut"].as_f64().unwrap());
    let nlayers = rf["nlayers"].as_u64().unwrap() as usize;
    let slots = m.comm_slots();
    assert_eq!(slots.len(), nlayers);
    let n_dim = rf["n_dim"].as_u64().unwrap() as usize;
    assert!(slots
        .iter()
        .all(|c| c.width == n_dim && c.forward && c.reverse));
    assert_eq!(s.comm_slots, nlayers);
    let text = s.to_string();
    assert!(
        lists(&text, "repflow_args.nlayers", &nlayers.to_string()),
        "{text}"
    );
}
