//! Integrators: velocity Verlet (NVE), Langevin (BAOAB), Nosé–Hoover chains (NVT),
//! MTK NPT and the FIRE minimiser.
//!
//! Every integrator is a velocity-Verlet-style splitting cut at the force evaluation:
//! [`Integrator::pre_force`] does everything up to the new positions (and cell), the run
//! loop evaluates forces, and [`Integrator::post_force`] finishes the step. Integrators
//! hold only small global state (thermostat chains, cell momenta, FIRE's step size), which
//! is identical on every rank because it is updated only from all-reduced quantities;
//! per-atom state lives in [`Atoms`] and migrates with the atoms. [`Integrator::state`]
//! returns that global state exactly, so a checkpoint continues bit for bit.
//!
//! Units are metal: eV, Å, fs, amu, K; pressures are bar at the API and eV/Å³ inside.

// 3×3 tensor algebra reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

mod fire;
mod langevin;
mod nose_hoover;
mod npt;
mod nve;

pub use fire::{Fire, FireParams};
pub use langevin::Langevin;
pub use nose_hoover::NoseHooverChain;
pub use npt::{Npt, NptParams};
pub use nve::Nve;

use halo_comm::Comm;
use halo_core::units::AMU_A2_PER_FS2_EV;
use halo_core::{Cell, Mat3};

use crate::{Atoms, MdError, Potential};

/// What an integrator may touch during one step.
pub struct Ctx<'a> {
    /// This rank's communicator.
    pub comm: &'a dyn Comm,
    /// The atoms this rank owns.
    pub atoms: &'a mut Atoms,
    /// The simulation cell (NPT and cell relaxation change it).
    pub cell: &'a mut Option<Cell>,
    /// Number of atoms on all ranks.
    pub natoms: usize,
    /// Time step (fs).
    pub dt: f64,
    /// The step being taken (1-based; keys the Langevin noise).
    pub step: u64,
}

/// A time integrator or minimiser, split around the force evaluation.
pub trait Integrator: Send {
    /// Short name (also recorded in checkpoints).
    fn name(&self) -> &'static str;
    /// Prepares the integrator once the forces at the start are known; it never resets
    /// the state [`Integrator::set_state`] restores, so either may come first.
    fn setup(&mut self, ctx: &mut Ctx<'_>, pot: &Potential) -> Result<(), MdError>;
    /// The part of the step before the force evaluation (positions, maybe the cell, move).
    fn pre_force(&mut self, ctx: &mut Ctx<'_>) -> Result<(), MdError>;
    /// The part of the step after the force evaluation at the new positions.
    fn post_force(&mut self, ctx: &mut Ctx<'_>, pot: &Potential) -> Result<(), MdError>;
    /// Energy (eV) to add to PE + KE for the conserved quantity of this dynamics.
    fn conserved_extra(&self) -> f64;
    /// Degrees of freedom for the temperature of `natoms` atoms.
    fn ndof(&self, natoms: usize) -> usize;
    /// The integrator's global state, exactly (for checkpoints).
    fn state(&self) -> Vec<f64>;
    /// Restores a state from [`Integrator::state`].
    fn set_state(&mut self, state: &[f64]) -> Result<(), MdError>;
    /// Whether a minimiser has converged (always false for dynamics).
    fn converged(&self) -> bool {
        false
    }
}

/// Which cell degrees of freedom the NPT barostat moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Couple {
    /// Volume only: the cell scales uniformly.
    Iso,
    /// The three Cartesian diagonal components independently.
    Aniso,
    /// The full symmetric cell momentum (all six strain components; triclinic cells).
    Tri,
}

/// Half a velocity-Verlet kick `v += δ F / m` on the local atoms.
pub(crate) fn kick(atoms: &mut Atoms, delta: f64) {
    for i in 0..atoms.len() {
        let c = delta / (atoms.mass[i] * AMU_A2_PER_FS2_EV);
        let f = atoms.f[i];
        let v = &mut atoms.v[i];
        v[0] += c * f[0];
        v[1] += c * f[1];
        v[2] += c * f[2];
    }
}

/// Drift `x += δ v` on the local atoms.
pub(crate) fn drift(atoms: &mut Atoms, delta: f64) {
    for (x, v) in atoms.x.iter_mut().zip(&atoms.v) {
        x[0] += delta * v[0];
        x[1] += delta * v[1];
        x[2] += delta * v[2];
    }
}

/// Scales every local velocity by `s`.
pub(crate) fn scale_velocities(atoms: &mut Atoms, s: f64) {
    for v in &mut atoms.v {
        v[0] *= s;
        v[1] *= s;
        v[2] *= s;
    }
}

/// Fails with [`MdError::Unstable`] if a local position or velocity is not finite.
pub(crate) fn check_finite(atoms: &Atoms, step: u64) -> Result<(), MdError> {
    for i in 0..atoms.len() {
        let (x, v) = (atoms.x[i], atoms.v[i]);
        if !(x.iter().chain(&v).all(|c| c.is_finite())) {
            return Err(MdError::Unstable {
                step,
                msg: format!(
                    "atom {} has a non-finite position {x:?} or velocity {v:?} \
                     (time step too large, or a bad model or structure?)",
                    atoms.gid[i]
                ),
            });
        }
    }
    Ok(())
}

/// Validates a positive, finite parameter.
pub(crate) fn positive(name: &str, value: f64) -> Result<f64, MdError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(MdError::Input(format!(
            "{name} must be positive and finite, got {value}"
        )))
    }
}

/// Fails if `state` does not have `len` values.
pub(crate) fn expect_len(name: &str, state: &[f64], len: usize) -> Result<(), MdError> {
    if state.len() == len {
        Ok(())
    } else {
        Err(MdError::Input(format!(
            "{name}: saved integrator state has {} values, expected {len}",
            state.len()
        )))
    }
}

/// Fourth-order Suzuki–Yoshida weights (Yoshida, Phys. Lett. A 150, 262 (1990)).
const SUZUKI_YOSHIDA: [f64; 3] = [
    1.351_207_191_959_657_6,
    -1.702_414_383_919_315_3,
    1.351_207_191_959_657_6,
];

/// A Nosé–Hoover chain (Martyna, Klein & Tuckerman, J. Chem. Phys. 97, 2635 (1992)),
/// integrated with the Trotter factorisation of Tuckerman et al., J. Phys. A 39, 5629
/// (2006), with fourth-order Suzuki–Yoshida sub-steps, as ASE's `NoseHooverChainThermostat`.
///
/// It thermostats `dof` degrees of freedom whose `Σ p²/m` is passed in; it never touches
/// them itself but returns the factor by which their momenta must be scaled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chain {
    /// Thermostat masses `Q_j` (eV fs²).
    q: Vec<f64>,
    /// Positions `η_j` (dimensionless).
    eta: Vec<f64>,
    /// Momenta `p_η_j` (eV fs).
    p: Vec<f64>,
    /// Target `kT` (eV).
    kt: f64,
    /// Thermostatted degrees of freedom.
    dof: f64,
}

impl Chain {
    /// A chain of `len` thermostats at rest; masses come with [`Chain::set_masses`].
    pub(crate) fn new(len: usize) -> Self {
        Chain {
            q: vec![1.0; len],
            eta: vec![0.0; len],
            p: vec![0.0; len],
            kt: 0.0,
            dof: 0.0,
        }
    }

    /// `Q_1 = dof kT τ²`, `Q_j = kT τ²` (LAMMPS fix nvt, ASE).
    pub(crate) fn set_masses(&mut self, dof: f64, kt: f64, tau: f64) {
        self.kt = kt;
        self.dof = dof;
        for (j, q) in self.q.iter_mut().enumerate() {
            *q = if j == 0 { dof } else { 1.0 } * kt * tau * tau;
        }
    }

    /// Chain energy: `Σ p_j²/2Q_j + dof kT η_1 + kT Σ_{j>1} η_j` (eV).
    pub(crate) fn energy(&self) -> f64 {
        let mut e = 0.0;
        for j in 0..self.q.len() {
            e += 0.5 * self.p[j] * self.p[j] / self.q[j];
            e += if j == 0 { self.dof } else { 1.0 } * self.kt * self.eta[j];
        }
        e
    }

    /// Propagates the chain by `delta` given `Σ p²/m` (eV) of the coupled degrees of
    /// freedom; returns the scale factor for their momenta.
    pub(crate) fn propagate(&mut self, mut twoke: f64, delta: f64) -> f64 {
        let mut scale = 1.0;
        for w in SUZUKI_YOSHIDA {
            let d = w * delta;
            let m = self.q.len();
            for j in (0..m).rev() {
                self.update_p(j, twoke, d);
            }
            for j in 0..m {
                self.eta[j] += d * self.p[j] / self.q[j];
            }
            let s = (-d * self.p[0] / self.q[0]).exp();
            scale *= s;
            twoke *= s * s;
            for j in 0..m {
                self.update_p(j, twoke, d);
            }
        }
        scale
    }

    fn update_p(&mut self, j: usize, twoke: f64, d: f64) {
        let m = self.q.len();
        let damp = if j + 1 < m {
            (-0.25 * d * self.p[j + 1] / self.q[j + 1]).exp()
        } else {
            1.0
        };
        self.p[j] *= damp;
        let g = if j == 0 {
            twoke - self.dof * self.kt
        } else {
            self.p[j - 1] * self.p[j - 1] / self.q[j - 1] - self.kt
        };
        self.p[j] += 0.5 * d * g;
        self.p[j] *= damp;
    }

    /// Number of values in [`Chain::state`].
    pub(crate) fn state_len(&self) -> usize {
        2 * self.q.len()
    }

    /// Appends `η` then `p_η`.
    pub(crate) fn push_state(&self, out: &mut Vec<f64>) {
        out.extend_from_slice(&self.eta);
        out.extend_from_slice(&self.p);
    }

    /// Restores from `state` (exactly [`Chain::state_len`] values).
    pub(crate) fn load_state(&mut self, state: &[f64]) {
        let m = self.q.len();
        self.eta.copy_from_slice(&state[..m]);
        self.p.copy_from_slice(&state[m..2 * m]);
    }
}

/// `(eˣ − 1)/x`, accurate near 0.
pub(crate) fn exprel(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        x.exp_m1() / x
    }
}

/// Eigen-decomposition of a symmetric 3×3 matrix by cyclic Jacobi rotations:
/// returns eigenvalues and `U` with the eigenvectors as columns (`A = U diag(λ) Uᵀ`).
pub(crate) fn sym_eigen(a: &Mat3) -> ([f64; 3], Mat3) {
    let mut a = *a;
    let mut u = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _sweep in 0..50 {
        let off = a[0][1].abs() + a[0][2].abs() + a[1][2].abs();
        let diag = a[0][0].abs() + a[1][1].abs() + a[2][2].abs();
        if off == 0.0 || off <= 1e-300 || off <= f64::EPSILON * 1e-3 * diag {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q] == 0.0 {
                continue;
            }
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let c = 1.0 / (t * t + 1.0).sqrt();
            let s = t * c;
            // A ← Jᵀ A J with the rotation J in the (p, q) plane.
            for k in 0..3 {
                let (akp, akq) = (a[k][p], a[k][q]);
                a[k][p] = c * akp - s * akq;
                a[k][q] = s * akp + c * akq;
            }
            for k in 0..3 {
                let (apk, aqk) = (a[p][k], a[q][k]);
                a[p][k] = c * apk - s * aqk;
                a[q][k] = s * apk + c * aqk;
            }
            for row in &mut u {
                let (ukp, ukq) = (row[p], row[q]);
                row[p] = c * ukp - s * ukq;
                row[q] = s * ukp + c * ukq;
            }
        }
    }
    ([a[0][0], a[1][1], a[2][2]], u)
}

/// Row vector times `U`: components in the eigenbasis.
pub(crate) fn to_basis(x: [f64; 3], u: &Mat3) -> [f64; 3] {
    halo_core::cell::vec_mat(x, u)
}

/// Components in the eigenbasis back to Cartesian: `y · Uᵀ`.
pub(crate) fn from_basis(y: [f64; 3], u: &Mat3) -> [f64; 3] {
    [
        y[0] * u[0][0] + y[1] * u[0][1] + y[2] * u[0][2],
        y[0] * u[1][0] + y[1] * u[1][1] + y[2] * u[1][2],
        y[0] * u[2][0] + y[1] * u[2][1] + y[2] * u[2][2],
    ]
}

/// The cell, or an input error naming the integrator that needs one.
pub(crate) fn need_cell<'c>(cell: &'c Option<Cell>, who: &str) -> Result<&'c Cell, MdError> {
    match cell {
        Some(c) if c.pbc().iter().all(|&p| p) => Ok(c),
        _ => Err(MdError::Input(format!("{who} needs a fully periodic cell"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_reconstructs() {
        let a = [[2.0, 0.3, -0.1], [0.3, -1.0, 0.7], [-0.1, 0.7, 0.5]];
        let (l, u) = sym_eigen(&a);
        for i in 0..3 {
            for j in 0..3 {
                let mut s = 0.0;
                let mut o = 0.0;
                for k in 0..3 {
                    s += u[i][k] * l[k] * u[j][k];
                    o += u[k][i] * u[k][j];
                }
                assert!((s - a[i][j]).abs() < 1e-14);
                assert!((o - if i == j { 1.0 } else { 0.0 }).abs() < 1e-14);
            }
        }
        let (l, u) = sym_eigen(&[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]]);
        assert_eq!(l, [1.0, 2.0, 3.0]);
        assert_eq!(u[0], [1.0, 0.0, 0.0]);
    }

    #[test]
    fn exprel_small_and_large() {
        assert_eq!(exprel(0.0), 1.0);
        assert!((exprel(1e-10) - (1.0 + 5e-11)).abs() < 1e-16);
        assert!((exprel(1.0) - (1f64.exp() - 1.0)).abs() < 1e-15);
    }
}
