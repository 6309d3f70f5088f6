//! An atomic system: positions, types, masses, optional velocities and charges, and a cell.

use crate::{elements, Cell, CoreError, Vec3};

/// Atoms in a (possibly periodic) cell.
///
/// Types are indices into `type_names`; masses are per atom (amu). A `cell` of `None` means a
/// fully non-periodic system in free space.
#[derive(Debug, Clone, PartialEq)]
pub struct System {
    /// Cartesian positions (Å).
    pub positions: Vec<Vec3>,
    /// Per-atom type index into `type_names`.
    pub types: Vec<usize>,
    /// Names of the types (usually chemical symbols).
    pub type_names: Vec<String>,
    /// Per-atom masses (amu).
    pub masses: Vec<f64>,
    /// Per-atom velocities (Å/fs), if known.
    pub velocities: Option<Vec<Vec3>>,
    /// Per-atom charges (e), if known.
    pub charges: Option<Vec<f64>>,
    /// The simulation cell; `None` for an isolated system.
    pub cell: Option<Cell>,
}

impl System {
    /// Builds and validates a system without velocities or charges.
    pub fn new(
        positions: Vec<Vec3>,
        types: Vec<usize>,
        type_names: Vec<String>,
        masses: Vec<f64>,
        cell: Option<Cell>,
    ) -> Result<Self, CoreError> {
        let s = System {
            positions,
            types,
            type_names,
            masses,
            velocities: None,
            charges: None,
            cell,
        };
        s.validate()?;
        Ok(s)
    }

    /// Builds a system from chemical symbols, with standard atomic masses and type names in
    /// order of first appearance.
    pub fn from_symbols(
        symbols: &[&str],
        positions: Vec<Vec3>,
        cell: Option<Cell>,
    ) -> Result<Self, CoreError> {
        let mut type_names: Vec<String> = Vec::new();
        let mut types = Vec::with_capacity(symbols.len());
        let mut masses = Vec::with_capacity(symbols.len());
        for (atom, sym) in symbols.iter().enumerate() {
            let mass = elements::mass_of(sym).ok_or_else(|| CoreError::Invalid {
                field: format!("symbol of atom {atom}"),
                reason: format!("`{sym}` is not a chemical element"),
            })?;
            let t = match type_names.iter().position(|n| n == sym) {
                Some(t) => t,
                None => {
                    type_names.push(sym.to_string());
                    type_names.len() - 1
                }
            };
            types.push(t);
            masses.push(mass);
        }
        Self::new(positions, types, type_names, masses, cell)
    }

    /// Number of atoms.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// True if the system has no atoms.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The type name of atom `i`.
    pub fn symbol(&self, i: usize) -> &str {
        &self.type_names[self.types[i]]
    }

    /// Periodicity per axis (all false without a cell).
    pub fn pbc(&self) -> [bool; 3] {
        self.cell.map_or([false; 3], |c| c.pbc())
    }

    /// Checks lengths, finiteness, masses and type indices.
    pub fn validate(&self) -> Result<(), CoreError> {
        let n = self.positions.len();
        let check_len = |field, got| {
            if got != n {
                Err(CoreError::LengthMismatch {
                    field,
                    got,
                    expected: n,
                })
            } else {
                Ok(())
            }
        };
        check_len("types", self.types.len())?;
        check_len("masses", self.masses.len())?;
        check_finite3("positions", &self.positions)?;
        if let Some(v) = &self.velocities {
            check_len("velocities", v.len())?;
            check_finite3("velocities", v)?;
        }
        if let Some(q) = &self.charges {
            check_len("charges", q.len())?;
            if let Some(atom) = q.iter().position(|x| !x.is_finite()) {
                return Err(CoreError::NonFinite {
                    field: "charges",
                    atom,
                });
            }
        }
        for (atom, &mass) in self.masses.iter().enumerate() {
            if !mass.is_finite() {
                return Err(CoreError::NonFinite {
                    field: "masses",
                    atom,
                });
            }
            if mass <= 0.0 {
                return Err(CoreError::BadMass { atom, mass });
            }
        }
        let ntypes = self.type_names.len();
        if let Some(atom) = self.types.iter().position(|&t| t >= ntypes) {
            return Err(CoreError::BadType {
                atom,
                ty: self.types[atom],
                ntypes,
            });
        }
        Ok(())
    }
}

fn check_finite3(field: &'static str, xs: &[Vec3]) -> Result<(), CoreError> {
    match xs.iter().position(|x| x.iter().any(|c| !c.is_finite())) {
        Some(atom) => Err(CoreError::NonFinite { field, atom }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_from_symbols() {
        let s = System::from_symbols(
            &["O", "H", "H"],
            vec![[0.0; 3], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
            None,
        )
        .unwrap();
        assert_eq!(s.type_names, vec!["O", "H"]);
        assert_eq!(s.types, vec![0, 1, 1]);
        assert!((s.masses[0] - 15.999).abs() < 1e-3);
        assert_eq!(s.symbol(2), "H");
        assert_eq!(s.pbc(), [false; 3]);
    }

    #[test]
    fn rejects_bad_systems() {
        let e = System::from_symbols(&["Xx"], vec![[0.0; 3]], None).unwrap_err();
        assert!(e.to_string().contains("Xx"));
        let e = System::new(
            vec![[0.0, f64::NAN, 0.0]],
            vec![0],
            vec!["H".into()],
            vec![1.0],
            None,
        )
        .unwrap_err();
        assert_eq!(
            e,
            CoreError::NonFinite {
                field: "positions",
                atom: 0
            }
        );
        let e =
            System::new(vec![[0.0; 3]], vec![0], vec!["H".into()], vec![-1.0], None).unwrap_err();
        assert!(matches!(e, CoreError::BadMass { atom: 0, .. }));
        let e = System::new(
            vec![[0.0; 3]],
            vec![0, 0],
            vec!["H".into()],
            vec![1.0],
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("types"), "{e}");
        let e =
            System::new(vec![[0.0; 3]], vec![3], vec!["H".into()], vec![1.0], None).unwrap_err();
        assert!(matches!(e, CoreError::BadType { ty: 3, .. }));
    }
}
