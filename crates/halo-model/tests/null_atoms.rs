//! Atoms of type `-1` (LAMMPS `NULL` types, handled by the domain layer) are inert: no energy,
//! no force, and invisible to their neighbours. Atoms whose element the model does not know
//! are an error in the single-process path.

mod common;

use common::{max_abs, references};
use halo_core::{MappingExchange, System};
use halo_model::descriptor::DescriptorInput;
use halo_model::{EnergyModel, EvalError, EvalParams};
use halo_nlist::NeighborList;

#[test]
fn null_type_atoms_are_inert() {
    let mut checked = 0;
    for descriptor in ["se_e2_a", "dpa3"] {
        let r = references()
            .into_iter()
            .find(|r| {
                r.descriptor == descriptor
                    && r.precision == "float64"
                    && r.cases
                        .iter()
                        .any(|c| c.structure == "cluster" && c.force.is_some())
            })
            .unwrap_or_else(|| panic!("no float64 {descriptor} reference with a cluster"));
        let c = r.cases.iter().find(|c| c.structure == "cluster").unwrap();
        let model = EnergyModel::load(&r.model).unwrap();
        let n = c.system.len();
        // A NULL atom 1 Å from atom 0, local, last.
        let mut coords = c.system.positions.clone();
        let x0 = coords[0];
        coords.push([x0[0] + 0.8, x0[1] + 0.5, x0[2] + 0.3]);
        let mut types: Vec<i32> = c.system.types.iter().map(|&t| t as i32).collect();
        types.push(-1);
        let list = NeighborList::build(&coords, n + 1, model.rcut()).unwrap();
        let layout_types: Vec<usize> = types.iter().map(|&t| t.max(0) as usize).collect();
        let dense = list.to_dense(&layout_types, &model.nnei_layout()).unwrap();
        let input = DescriptorInput {
            coords: &coords,
            types: &types,
            nloc: n + 1,
            nlist: &dense.nlist,
            nnei: dense.width,
        };
        let mut ex = MappingExchange::new((0..=n).collect(), n + 1);
        let params = EvalParams {
            fparam: c.fparam.clone(),
            aparam: c.aparam.as_ref().map(|a| {
                let mut a = a.clone();
                a.extend(std::iter::repeat_n(0.5, a.len() / n));
                a
            }),
            head: None,
            atomic_virial: true,
        };
        let out = model.evaluate(&input, &mut ex, &params).unwrap();
        assert_eq!(out.atom_energy[n], 0.0);
        assert_eq!(out.force[n], [0.0; 3]);
        assert_eq!(out.atom_virial[n], [0.0; 9]);
        let de = max_abs(
            out.atom_energy[..n].iter().copied(),
            c.atom_energy.iter().copied(),
        );
        let df = max_abs(
            out.force[..n].iter().flatten().copied(),
            c.force.as_ref().unwrap().iter().flatten().copied(),
        );
        assert!(
            de < 1e-10 && df < 1e-9,
            "{}: ΔE_atom {de:e}, ΔF {df:e}",
            r.name
        );
        checked += 1;
    }
    assert_eq!(checked, 2);
}

#[test]
fn unknown_elements_are_named() {
    let r = references().into_iter().next().expect("a reference");
    let model = EnergyModel::load(&r.model).unwrap();
    let system = System::from_symbols(&["H", "Xe"], vec![[0.0; 3], [1.5, 0.0, 0.0]], None).unwrap();
    let params = EvalParams::default();
    let e = model.evaluate_system(&system, &params).unwrap_err();
    assert!(matches!(e, EvalError::Input(_)));
    let text = e.to_string();
    assert!(
        text.starts_with("invalid input: atom 1 is `Xe`, which is not in the model's type map"),
        "{text}"
    );
}

#[test]
fn isolated_atoms_feel_no_force() {
    for descriptor in ["se_e2_a", "dpa3"] {
        let r = references()
            .into_iter()
            .find(|r| r.descriptor == descriptor && r.precision == "float64")
            .unwrap_or_else(|| panic!("no float64 {descriptor} reference"));
        let model = EnergyModel::load(&r.model).unwrap();
        let names: Vec<&str> = vec![r.cases[0].system.type_names[0].as_str(); 2];
        // Two atoms 20 Å apart: each is alone within the cutoff.
        let system = System::from_symbols(&names, vec![[0.0; 3], [20.0, 0.0, 0.0]], None).unwrap();
        let params = EvalParams {
            fparam: r.cases[0].fparam.clone(),
            aparam: r.cases[0]
                .aparam
                .as_ref()
                .map(|a| a[..2 * a.len() / r.cases[0].system.len()].to_vec()),
            head: None,
            atomic_virial: true,
        };
        let out = model.evaluate_system(&system, &params).unwrap();
        assert_eq!(out.force, vec![[0.0; 3]; 2], "{}", r.name);
        assert_eq!(out.virial, [0.0; 9], "{}", r.name);
        assert_eq!(out.atom_energy[0], out.atom_energy[1], "{}", r.name);
    }
}
