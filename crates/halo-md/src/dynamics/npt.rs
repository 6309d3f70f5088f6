//! Isothermal–isobaric dynamics: MTK barostat with Nosé–Hoover chains.

use halo_core::units::{bar_to_ev_per_a3, AMU_A2_PER_FS2_EV, KB_EV_PER_K};
use halo_core::{Cell, Mat3};

use super::{
    check_finite, exprel, from_basis, need_cell, positive, scale_velocities, sym_eigen, to_basis,
    Chain, Couple, Ctx, Integrator,
};
use crate::observables::{kinetic_tensor, ndof_com_removed};
use crate::{Atoms, MdError, Potential};

/// Parameters of [`Npt`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NptParams {
    /// Target temperature (K).
    pub temperature: f64,
    /// Thermostat relaxation time (fs), typically 100 time steps.
    pub tdamp: f64,
    /// External (hydrostatic) pressure (bar).
    pub pressure_bar: f64,
    /// Barostat relaxation time (fs), typically 1000 time steps.
    pub pdamp: f64,
    /// Which cell degrees of freedom move.
    pub couple: Couple,
    /// Length of the particle and barostat Nosé–Hoover chains.
    pub chain: usize,
}

/// NPT with the Martyna–Tobias–Klein equations (J. Chem. Phys. 101, 4177 (1994)),
/// integrated with the reversible Trotter splitting of ASE's `MTKNPT` /
/// `IsotropicMTKNPT` (after Tuckerman et al., J. Phys. A 39, 5629 (2006)):
///
/// ```text
/// NHC_baro(dt/2) NHC_part(dt/2) p_g(dt/2) p(dt/2) [x, h](dt) | forces | p(dt/2) p_g(dt/2)
/// NHC_part(dt/2) NHC_baro(dt/2)
/// ```
///
/// The cell momentum `p_g` is a symmetric 3×3 matrix restricted to the span of an
/// orthonormal (Frobenius) basis: `I/√3` (iso), the three diagonal units (aniso) or all six
/// symmetric units (tri). Its driving force is the projection of
/// `G = V (P_int − P_ext I) + (Σ m v²/N_f) I` with `P_int = (Σ m v⊗v + W)/V`. Particles
/// feel `dv/dt = F/m − (p_g + tr(p_g)/N_f)/W v` and move as `dx/dt = v + p_g/W x`, and the
/// cell as `dh/dt = h p_g/W` (rows of `h` are lattice vectors); both are integrated exactly
/// in the eigenbasis of `p_g`, so positions are scaled affinely with the cell.
///
/// Masses: `W = (N + 1) kT τ_p²` (for iso this is ASE's `(3N+3) kT τ_p²` in its units of
/// the volume momentum), particle chain `Q_1 = N_f kT τ_T²`, barostat chain
/// `R_1 = n_cell kT τ_p²`, and `kT τ²` for the rest. `N_f = 3N − 3`.
/// Conserved: `PE + KE + Σ p_g²/2W + P_ext V + chain energies`.
#[derive(Debug, Clone)]
pub struct Npt {
    params: NptParams,
    p_ext: f64,
    basis: Vec<Mat3>,
    /// Cell momenta along `basis` (eV fs).
    pc: Vec<f64>,
    thermo: Chain,
    baro: Chain,
    /// Cell mass (eV fs²).
    w: f64,
    /// Particle degrees of freedom `N_f`.
    nf: f64,
    volume: f64,
    virial: [f64; 9],
}

fn unit(a: usize, b: usize) -> Mat3 {
    let mut m = [[0.0; 3]; 3];
    if a == b {
        m[a][a] = 1.0;
    } else {
        m[a][b] = std::f64::consts::FRAC_1_SQRT_2;
        m[b][a] = std::f64::consts::FRAC_1_SQRT_2;
    }
    m
}

impl Npt {
    /// An MTK NPT integrator; cell momenta and chains start at rest.
    pub fn new(params: NptParams) -> Result<Self, MdError> {
        positive("npt temperature (K)", params.temperature)?;
        positive("npt tdamp (fs)", params.tdamp)?;
        positive("npt pdamp (fs)", params.pdamp)?;
        if !params.pressure_bar.is_finite() {
            return Err(MdError::Input(format!(
                "npt pressure must be finite, got {} bar",
                params.pressure_bar
            )));
        }
        if params.chain == 0 {
            return Err(MdError::Input("npt chain length must be at least 1".into()));
        }
        let basis = match params.couple {
            Couple::Iso => {
                let s = 1.0 / 3f64.sqrt();
                vec![[[s, 0.0, 0.0], [0.0, s, 0.0], [0.0, 0.0, s]]]
            }
            Couple::Aniso => vec![unit(0, 0), unit(1, 1), unit(2, 2)],
            Couple::Tri => vec![
                unit(0, 0),
                unit(1, 1),
                unit(2, 2),
                unit(0, 1),
                unit(0, 2),
                unit(1, 2),
            ],
        };
        Ok(Npt {
            params,
            p_ext: bar_to_ev_per_a3(params.pressure_bar),
            pc: vec![0.0; basis.len()],
            basis,
            thermo: Chain::new(params.chain),
            baro: Chain::new(params.chain),
            w: 1.0,
            nf: 0.0,
            volume: 0.0,
            virial: [0.0; 9],
        })
    }

    /// The cell momentum matrix `p_g = Σ_k p_k B_k`.
    fn pg(&self) -> Mat3 {
        let mut m = [[0.0; 3]; 3];
        for (p, b) in self.pc.iter().zip(&self.basis) {
            for i in 0..3 {
                for j in 0..3 {
                    m[i][j] += p * b[i][j];
                }
            }
        }
        m
    }

    fn cell_kinetic_twice(&self) -> f64 {
        self.pc.iter().map(|p| p * p).sum::<f64>() / self.w
    }

    /// `p_k += δ ⟨G, B_k⟩` with `G = K + W − P_ext V I + (tr K / N_f) I`.
    fn kick_cell(&mut self, k: &[f64; 9], delta: f64) {
        let diag = (k[0] + k[4] + k[8]) / self.nf - self.p_ext * self.volume;
        for (p, b) in self.pc.iter_mut().zip(&self.basis) {
            let mut g = 0.0;
            for i in 0..3 {
                for j in 0..3 {
                    let mut gij = k[3 * i + j] + self.virial[3 * i + j];
                    if i == j {
                        gij += diag;
                    }
                    g += gij * b[i][j];
                }
            }
            *p += delta * g;
        }
    }

    /// Particle half-kick with the barostat friction, exact in the eigenbasis of `p_g`.
    fn kick_particles(&self, atoms: &mut Atoms, delta: f64) {
        let (lam, u) = sym_eigen(&self.pg());
        let tr = (lam[0] + lam[1] + lam[2]) / self.nf;
        let mut decay = [0.0; 3];
        let mut phi = [0.0; 3];
        for a in 0..3 {
            let x = -(lam[a] + tr) * delta / self.w;
            decay[a] = x.exp();
            phi[a] = delta * exprel(x);
        }
        for i in 0..atoms.len() {
            let c = 1.0 / (atoms.mass[i] * AMU_A2_PER_FS2_EV);
            let y = to_basis(atoms.v[i], &u);
            let f = to_basis(atoms.f[i], &u);
            let mut out = [0.0; 3];
            for a in 0..3 {
                out[a] = y[a] * decay[a] + phi[a] * c * f[a];
            }
            atoms.v[i] = from_basis(out, &u);
        }
    }

    /// Positions and cell over `delta`: `x ← x e^{p_g δ/W} + δ v φ(p_g δ/W)`, `h ← h e^{p_g δ/W}`.
    fn drift(&mut self, ctx: &mut Ctx<'_>, delta: f64) -> Result<(), MdError> {
        let (lam, u) = sym_eigen(&self.pg());
        let mut grow = [0.0; 3];
        let mut phi = [0.0; 3];
        for a in 0..3 {
            let x = lam[a] * delta / self.w;
            grow[a] = x.exp();
            phi[a] = delta * exprel(x);
        }
        let atoms = &mut *ctx.atoms;
        for i in 0..atoms.len() {
            let y = to_basis(atoms.x[i], &u);
            let v = to_basis(atoms.v[i], &u);
            let mut out = [0.0; 3];
            for a in 0..3 {
                out[a] = y[a] * grow[a] + phi[a] * v[a];
            }
            atoms.x[i] = from_basis(out, &u);
        }
        let old = need_cell(ctx.cell, "npt")?;
        let mut h = *old.matrix();
        for row in &mut h {
            let y = to_basis(*row, &u);
            *row = from_basis([y[0] * grow[0], y[1] * grow[1], y[2] * grow[2]], &u);
        }
        let new = Cell::new(h, old.pbc()).map_err(|e| MdError::Unstable {
            step: ctx.step,
            msg: format!(
                "the NPT cell became invalid ({e}); barostat too fast or pressure unreachable?"
            ),
        })?;
        self.volume = new.volume();
        *ctx.cell = Some(new);
        Ok(())
    }

    fn thermostat(&mut self, atoms: &mut Atoms, k: &mut [f64; 9], delta: f64) {
        let s = self.thermo.propagate(k[0] + k[4] + k[8], delta);
        scale_velocities(atoms, s);
        for x in k.iter_mut() {
            *x *= s * s;
        }
    }

    fn barostat_chain(&mut self, delta: f64) {
        let s = self.baro.propagate(self.cell_kinetic_twice(), delta);
        for p in &mut self.pc {
            *p *= s;
        }
    }
}

impl Integrator for Npt {
    fn name(&self) -> &'static str {
        "npt"
    }

    fn setup(&mut self, ctx: &mut Ctx<'_>, pot: &Potential) -> Result<(), MdError> {
        let cell = need_cell(ctx.cell, "npt")?;
        let nf = ndof_com_removed(ctx.natoms);
        if nf == 0 {
            return Err(MdError::Input("npt needs at least two atoms".into()));
        }
        let kt = KB_EV_PER_K * self.params.temperature;
        self.nf = nf as f64;
        self.w = (ctx.natoms as f64 + 1.0) * kt * self.params.pdamp * self.params.pdamp;
        self.thermo.set_masses(self.nf, kt, self.params.tdamp);
        self.baro
            .set_masses(self.basis.len() as f64, kt, self.params.pdamp);
        self.volume = cell.volume();
        self.virial = pot.virial;
        Ok(())
    }

    fn pre_force(&mut self, ctx: &mut Ctx<'_>) -> Result<(), MdError> {
        let half = 0.5 * ctx.dt;
        let mut k = kinetic_tensor(ctx.comm, ctx.atoms)?;
        self.barostat_chain(half);
        self.thermostat(ctx.atoms, &mut k, half);
        self.kick_cell(&k, half);
        self.kick_particles(ctx.atoms, half);
        self.drift(ctx, ctx.dt)?;
        check_finite(ctx.atoms, ctx.step)
    }

    fn post_force(&mut self, ctx: &mut Ctx<'_>, pot: &Potential) -> Result<(), MdError> {
        let half = 0.5 * ctx.dt;
        self.kick_particles(ctx.atoms, half);
        self.virial = pot.virial;
        let mut k = kinetic_tensor(ctx.comm, ctx.atoms)?;
        self.kick_cell(&k, half);
        self.thermostat(ctx.atoms, &mut k, half);
        self.barostat_chain(half);
        if !self.pc.iter().all(|p| p.is_finite()) {
            return Err(MdError::Unstable {
                step: ctx.step,
                msg: "the NPT cell momentum became non-finite".into(),
            });
        }
        check_finite(ctx.atoms, ctx.step)
    }

    fn conserved_extra(&self) -> f64 {
        self.thermo.energy()
            + self.baro.energy()
            + 0.5 * self.cell_kinetic_twice()
            + self.p_ext * self.volume
    }

    fn ndof(&self, natoms: usize) -> usize {
        ndof_com_removed(natoms)
    }

    fn state(&self) -> Vec<f64> {
        let mut s = self.pc.clone();
        self.thermo.push_state(&mut s);
        self.baro.push_state(&mut s);
        s
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), MdError> {
        let (n, t, b) = (
            self.pc.len(),
            self.thermo.state_len(),
            self.baro.state_len(),
        );
        super::expect_len("npt", state, n + t + b)?;
        self.pc.copy_from_slice(&state[..n]);
        self.thermo.load_state(&state[n..n + t]);
        self.baro.load_state(&state[n + t..]);
        Ok(())
    }
}
