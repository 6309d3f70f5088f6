//! FIRE minimiser, optionally relaxing the cell.

use halo_core::units::{bar_to_ev_per_a3, AMU_A2_PER_FS2_EV};
use halo_core::{Cell, Mat3};

use super::{check_finite, expect_len, need_cell, positive, Ctx, Integrator};
use crate::observables::{allreduce_max, allreduce_sum, max_force};
use crate::{MdError, Potential};

/// Parameters of [`Fire`]; [`FireParams::new`] fills in the usual defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FireParams {
    /// Converged when every atom's force is below this (eV/Å).
    pub fmax: f64,
    /// Largest displacement of any atom in one step (Å).
    pub maxstep: f64,
    /// Also relax the cell (to the hydrostatic `pressure_bar`).
    pub cell: bool,
    /// Target pressure for the cell relaxation (bar).
    pub pressure_bar: f64,
    /// Largest time step, as a multiple of the initial one (LAMMPS `tmax`, 10).
    pub dtmax_factor: f64,
    /// Steps with `F·v > 0` before the time step may grow (5).
    pub nmin: u64,
    /// Time-step growth factor (1.1).
    pub finc: f64,
    /// Time-step shrink factor after `F·v ≤ 0` (0.5).
    pub fdec: f64,
    /// Initial velocity-mixing parameter (0.1).
    pub alpha_start: f64,
    /// Mixing decay factor (0.99).
    pub falpha: f64,
}

impl FireParams {
    /// FIRE with the defaults of Bitzek et al. (2006), as in ASE and LAMMPS.
    pub fn new(fmax: f64, maxstep: f64, cell: bool, pressure_bar: f64) -> Self {
        FireParams {
            fmax,
            maxstep,
            cell,
            pressure_bar,
            dtmax_factor: 10.0,
            nmin: 5,
            finc: 1.1,
            fdec: 0.5,
            alpha_start: 0.1,
            falpha: 0.99,
        }
    }
}

/// The orthonormal (Frobenius) basis of symmetric 3×3 matrices used for the cell strain.
const SYM: [(usize, usize); 6] = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)];

/// FIRE (Bitzek, Koskinen, Gähler, Moseler & Gumbsch, PRL 97, 170201 (2006)) on the atom
/// positions, with physical masses and the atoms' velocities as FIRE's velocities.
///
/// With `cell: true` the cell joins as six extra coordinates, in the spirit of ASE's
/// `UnitCellFilter`: a symmetric strain `ε` (orthonormal basis, scaled by `N` as ASE's
/// `cell_factor`) applied to the current cell, `h ← h (I + ε)`, `x ← x (I + ε)`. Its
/// generalised force is `(W − P_ext V I)/N` (the virial `W` without kinetic part; `−∂(E +
/// P_ext V)/∂ε`), its mass `Σm/N²` (so that its stiffness per mass is that of an atom).
/// Converged when every atom force and every row of the cell force is below `fmax`, i.e.
/// the stress is within `fmax N / V` of `P_ext` (ASE's convention).
///
/// The step starts at `ctx.dt` and adapts up to `dtmax_factor · ctx.dt`; the largest
/// displacement per step (atoms and cell coordinates) is capped at `maxstep`. Start it with
/// zero velocities.
#[derive(Debug, Clone)]
pub struct Fire {
    params: FireParams,
    p_ext: f64,
    /// Current step (fs); 0 until [`Integrator::setup`] or [`Integrator::set_state`].
    dt: f64,
    alpha: f64,
    /// Consecutive steps with `F·v > 0`.
    npos: u64,
    /// Cell-strain velocities (1/fs, times `N`).
    vc: [f64; 6],
    /// Cell-strain forces at the current configuration (eV/Å).
    fc: [f64; 6],
    /// Cell coordinate mass (amu).
    cell_mass: f64,
    natoms: f64,
    /// Volume at the last evaluation when the cell relaxes, else 0 (Å³).
    volume: f64,
    converged: bool,
}

impl Fire {
    /// A FIRE minimiser.
    pub fn new(params: FireParams) -> Result<Self, MdError> {
        positive("minimize fmax (eV/Å)", params.fmax)?;
        positive("minimize maxstep (Å)", params.maxstep)?;
        positive("fire dtmax_factor", params.dtmax_factor)?;
        positive("fire finc", params.finc)?;
        positive("fire fdec", params.fdec)?;
        positive("fire alpha_start", params.alpha_start)?;
        positive("fire falpha", params.falpha)?;
        if !params.pressure_bar.is_finite() {
            return Err(MdError::Input(format!(
                "minimize pressure must be finite, got {} bar",
                params.pressure_bar
            )));
        }
        Ok(Fire {
            params,
            p_ext: bar_to_ev_per_a3(params.pressure_bar),
            dt: 0.0,
            alpha: params.alpha_start,
            npos: 0,
            vc: [0.0; 6],
            fc: [0.0; 6],
            cell_mass: 1.0,
            natoms: 1.0,
            volume: 0.0,
            converged: false,
        })
    }

    /// The current adaptive time step (fs).
    pub fn dt(&self) -> f64 {
        self.dt
    }

    /// Cell forces from the virial at the current cell, and the convergence test.
    fn evaluate(&mut self, ctx: &mut Ctx<'_>, pot: &Potential) -> Result<(), MdError> {
        let fatoms = max_force(ctx.comm, ctx.atoms)?;
        let mut fcell = 0.0f64;
        if self.params.cell {
            let volume = need_cell(ctx.cell, "cell relaxation")?.volume();
            self.volume = volume;
            let mut g = [[0.0; 3]; 3];
            for i in 0..3 {
                for j in 0..3 {
                    // Symmetrised: a model's virial may carry a tiny antisymmetric part.
                    g[i][j] = 0.5 * (pot.virial[3 * i + j] + pot.virial[3 * j + i]) / self.natoms;
                }
                g[i][i] -= self.p_ext * volume / self.natoms;
            }
            for (k, &(i, j)) in SYM.iter().enumerate() {
                self.fc[k] = if i == j {
                    g[i][i]
                } else {
                    std::f64::consts::SQRT_2 * g[i][j]
                };
            }
            for row in &g {
                fcell = fcell.max((row[0] * row[0] + row[1] * row[1] + row[2] * row[2]).sqrt());
            }
            if !fcell.is_finite() {
                return Err(MdError::Unstable {
                    step: ctx.step,
                    msg: format!("non-finite virial {:?}", pot.virial),
                });
            }
        }
        if fatoms.is_nan() {
            return Err(MdError::Unstable {
                step: ctx.step,
                msg: "a force is NaN".into(),
            });
        }
        self.converged = fatoms < self.params.fmax && fcell < self.params.fmax;
        Ok(())
    }
}

impl Integrator for Fire {
    fn name(&self) -> &'static str {
        "fire"
    }

    fn setup(&mut self, ctx: &mut Ctx<'_>, pot: &Potential) -> Result<(), MdError> {
        positive("minimize timestep (fs)", ctx.dt)?;
        if self.dt == 0.0 {
            self.dt = ctx.dt;
        }
        self.natoms = ctx.natoms.max(1) as f64;
        if self.params.cell {
            need_cell(ctx.cell, "cell relaxation")?;
            let mut m = [ctx.atoms.mass.iter().sum::<f64>()];
            allreduce_sum(ctx.comm, &mut m)?;
            self.cell_mass = m[0] / (self.natoms * self.natoms);
        }
        self.evaluate(ctx, pot)
    }

    fn pre_force(&mut self, ctx: &mut Ctx<'_>) -> Result<(), MdError> {
        let p = self.params;
        let atoms = &mut *ctx.atoms;
        let mut s = [0.0; 3];
        for (f, v) in atoms.f.iter().zip(&atoms.v) {
            s[0] += f[0] * v[0] + f[1] * v[1] + f[2] * v[2];
            s[1] += f[0] * f[0] + f[1] * f[1] + f[2] * f[2];
            s[2] += v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
        }
        allreduce_sum(ctx.comm, &mut s)?;
        if p.cell {
            for k in 0..6 {
                s[0] += self.fc[k] * self.vc[k];
                s[1] += self.fc[k] * self.fc[k];
                s[2] += self.vc[k] * self.vc[k];
            }
        }
        let [vf, ff, vv] = s;
        // At rest (the first step) there is nothing to mix or to reset.
        if vv > 0.0 {
            if vf > 0.0 {
                let mix = if ff > 0.0 {
                    self.alpha * (vv / ff).sqrt()
                } else {
                    0.0
                };
                for (v, f) in atoms.v.iter_mut().zip(&atoms.f) {
                    for a in 0..3 {
                        v[a] = (1.0 - self.alpha) * v[a] + mix * f[a];
                    }
                }
                for k in 0..6 {
                    self.vc[k] = (1.0 - self.alpha) * self.vc[k] + mix * self.fc[k];
                }
                if self.npos > p.nmin {
                    self.dt = (self.dt * p.finc).min(p.dtmax_factor * ctx.dt);
                    self.alpha *= p.falpha;
                }
                self.npos += 1;
            } else {
                for v in &mut atoms.v {
                    *v = [0.0; 3];
                }
                self.vc = [0.0; 6];
                self.alpha = p.alpha_start;
                self.dt *= p.fdec;
                self.npos = 0;
            }
        }
        let dt = self.dt;
        super::kick(atoms, dt);
        let mut dmax = [0.0f64];
        for v in &atoms.v {
            let d2 = dt * dt * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
            if d2.is_nan() || d2 > dmax[0] {
                dmax[0] = d2;
            }
        }
        allreduce_max(ctx.comm, &mut dmax)?;
        let mut dq = [0.0; 6];
        if p.cell {
            let c = dt / (self.cell_mass * AMU_A2_PER_FS2_EV);
            for k in 0..6 {
                self.vc[k] += c * self.fc[k];
                dq[k] = dt * self.vc[k];
            }
            dmax[0] = dmax[0].max(dq.iter().map(|d| d * d).sum::<f64>());
        }
        let dmax = dmax[0].sqrt();
        let scale = if dmax > p.maxstep {
            dt * p.maxstep / dmax
        } else {
            dt
        };
        super::drift(atoms, scale);
        if p.cell {
            let mut e: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
            for (k, &(i, j)) in SYM.iter().enumerate() {
                let d = dq[k] * (scale / dt) / self.natoms;
                if i == j {
                    e[i][i] += d;
                } else {
                    e[i][j] += d * std::f64::consts::FRAC_1_SQRT_2;
                    e[j][i] += d * std::f64::consts::FRAC_1_SQRT_2;
                }
            }
            for x in &mut atoms.x {
                *x = halo_core::cell::vec_mat(*x, &e);
            }
            let old = need_cell(ctx.cell, "cell relaxation")?;
            let mut h = *old.matrix();
            for row in &mut h {
                *row = halo_core::cell::vec_mat(*row, &e);
            }
            let new = Cell::new(h, old.pbc()).map_err(|err| MdError::Unstable {
                step: ctx.step,
                msg: format!("cell relaxation produced an invalid cell: {err}"),
            })?;
            *ctx.cell = Some(new);
        }
        check_finite(ctx.atoms, ctx.step)
    }

    fn post_force(&mut self, ctx: &mut Ctx<'_>, pot: &Potential) -> Result<(), MdError> {
        self.evaluate(ctx, pot)
    }

    fn conserved_extra(&self) -> f64 {
        // The minimised quantity is the enthalpy E + P_ext V when the cell relaxes.
        self.p_ext * self.volume
    }

    fn ndof(&self, natoms: usize) -> usize {
        3 * natoms
    }

    fn state(&self) -> Vec<f64> {
        let mut s = vec![self.dt, self.alpha, self.npos as f64];
        s.extend_from_slice(&self.vc);
        s
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), MdError> {
        expect_len("fire", state, 9)?;
        if !(state[0] > 0.0 && state[0].is_finite()) || state[2] < 0.0 {
            return Err(MdError::Input(format!(
                "fire: invalid saved state {state:?}"
            )));
        }
        self.dt = state[0];
        self.alpha = state[1];
        self.npos = state[2] as u64;
        self.vc.copy_from_slice(&state[3..]);
        Ok(())
    }

    fn converged(&self) -> bool {
        self.converged
    }
}
