//! Langevin dynamics with the BAOAB splitting.

use halo_core::units::{AMU_A2_PER_FS2_EV, KB_EV_PER_K};

use super::{check_finite, drift, kick, positive, Ctx, Integrator};
use crate::observables::allreduce_sum;
use crate::{rng, MdError, Potential};

/// Langevin dynamics, BAOAB splitting (Leimkuhler & Matthews, Appl. Math. Res. Express
/// 2013, 34): half kick (B), half drift (A), exact Ornstein–Uhlenbeck step (O), half drift,
/// forces, half kick.
///
/// The O-step noise for atom `gid`, component `a`, at step `n` is
/// `rng::normal(seed, STREAM_LANGEVIN, n, gid, a)`, so the trajectory does not depend on
/// the rank layout. The kinetic energy each O-step adds is summed (globally) into `heat`;
/// `PE + KE − heat` is then conserved up to the discretisation error.
#[derive(Debug, Clone)]
pub struct Langevin {
    temperature: f64,
    damping: f64,
    seed: u64,
    /// Energy (eV) the thermostat has put into the system so far.
    heat: f64,
}

impl Langevin {
    /// Langevin at `temperature_k` (K) with friction `1/damping_fs`, noise from `seed`.
    pub fn new(temperature_k: f64, damping_fs: f64, seed: u64) -> Result<Self, MdError> {
        if !(temperature_k.is_finite() && temperature_k >= 0.0) {
            return Err(MdError::Input(format!(
                "langevin temperature must be finite and non-negative, got {temperature_k} K"
            )));
        }
        Ok(Langevin {
            temperature: temperature_k,
            damping: positive("langevin damping (fs)", damping_fs)?,
            seed,
            heat: 0.0,
        })
    }

    /// Energy (eV) the thermostat has added so far (negative when it removed energy).
    pub fn heat(&self) -> f64 {
        self.heat
    }
}

impl Integrator for Langevin {
    fn name(&self) -> &'static str {
        "langevin"
    }

    fn setup(&mut self, _ctx: &mut Ctx<'_>, _pot: &Potential) -> Result<(), MdError> {
        Ok(())
    }

    fn pre_force(&mut self, ctx: &mut Ctx<'_>) -> Result<(), MdError> {
        let dt = ctx.dt;
        kick(ctx.atoms, 0.5 * dt);
        drift(ctx.atoms, 0.5 * dt);
        let c1 = (-dt / self.damping).exp();
        let c2 = (1.0 - c1 * c1).sqrt();
        let kt = KB_EV_PER_K * self.temperature;
        let atoms = &mut *ctx.atoms;
        let mut dke = [0.0];
        for i in 0..atoms.len() {
            let mc = atoms.mass[i] * AMU_A2_PER_FS2_EV;
            let sigma = (kt / mc).sqrt();
            let gid = atoms.gid[i] as u64;
            let v = &mut atoms.v[i];
            let before = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
            for (a, c) in v.iter_mut().enumerate() {
                let z = rng::normal(self.seed, rng::STREAM_LANGEVIN, ctx.step, gid, a as u64);
                *c = c1 * *c + c2 * sigma * z;
            }
            let after = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
            dke[0] += 0.5 * mc * (after - before);
        }
        allreduce_sum(ctx.comm, &mut dke)?;
        self.heat += dke[0];
        drift(ctx.atoms, 0.5 * dt);
        check_finite(ctx.atoms, ctx.step)
    }

    fn post_force(&mut self, ctx: &mut Ctx<'_>, _pot: &Potential) -> Result<(), MdError> {
        kick(ctx.atoms, 0.5 * ctx.dt);
        check_finite(ctx.atoms, ctx.step)
    }

    fn conserved_extra(&self) -> f64 {
        -self.heat
    }

    fn ndof(&self, natoms: usize) -> usize {
        // The noise acts on every atom independently: momentum is not conserved.
        3 * natoms
    }

    fn state(&self) -> Vec<f64> {
        vec![self.heat]
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), MdError> {
        super::expect_len("langevin", state, 1)?;
        self.heat = state[0];
        Ok(())
    }
}
