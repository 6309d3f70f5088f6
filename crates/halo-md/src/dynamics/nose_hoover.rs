//! Nosé–Hoover chain thermostat (NVT).

use halo_core::units::KB_EV_PER_K;

use super::{check_finite, drift, kick, positive, scale_velocities, Chain, Ctx, Integrator};
use crate::observables::{kinetic_energy, ndof_com_removed};
use crate::{MdError, Potential};

/// NVT with a Nosé–Hoover chain (Martyna, Klein & Tuckerman 1992) of length `M`:
/// `exp(iL_NHC dt/2) · velocity Verlet · exp(iL_NHC dt/2)`, each chain half-step with
/// fourth-order Suzuki–Yoshida sub-steps (as ASE's `NoseHooverChainNVT`).
///
/// Masses follow LAMMPS fix nvt: `Q_1 = N_f kT τ²`, `Q_j = kT τ²`, `N_f = 3N − 3`. The
/// conserved quantity is `PE + KE + Σ p_η²/2Q + N_f kT η_1 + kT Σ_{j>1} η_j`.
#[derive(Debug, Clone)]
pub struct NoseHooverChain {
    temperature: f64,
    tdamp: f64,
    chain: Chain,
}

impl NoseHooverChain {
    /// NHC at `temperature_k` (K), relaxation time `tdamp_fs` (fs), `chain_len` thermostats.
    pub fn new(temperature_k: f64, tdamp_fs: f64, chain_len: usize) -> Result<Self, MdError> {
        if chain_len == 0 {
            return Err(MdError::Input(
                "nose-hoover chain length must be at least 1".into(),
            ));
        }
        Ok(NoseHooverChain {
            temperature: positive("nose-hoover temperature (K)", temperature_k)?,
            tdamp: positive("nose-hoover tdamp (fs)", tdamp_fs)?,
            chain: Chain::new(chain_len),
        })
    }

    fn thermostat(&mut self, ctx: &mut Ctx<'_>) -> Result<(), MdError> {
        let ke = kinetic_energy(ctx.comm, ctx.atoms)?;
        let s = self.chain.propagate(2.0 * ke, 0.5 * ctx.dt);
        scale_velocities(ctx.atoms, s);
        Ok(())
    }
}

impl Integrator for NoseHooverChain {
    fn name(&self) -> &'static str {
        "nose-hoover"
    }

    fn setup(&mut self, ctx: &mut Ctx<'_>, _pot: &Potential) -> Result<(), MdError> {
        let ndof = self.ndof(ctx.natoms);
        if ndof == 0 {
            return Err(MdError::Input(
                "nose-hoover needs at least two atoms".into(),
            ));
        }
        let kt = KB_EV_PER_K * self.temperature;
        self.chain.set_masses(ndof as f64, kt, self.tdamp);
        Ok(())
    }

    fn pre_force(&mut self, ctx: &mut Ctx<'_>) -> Result<(), MdError> {
        self.thermostat(ctx)?;
        kick(ctx.atoms, 0.5 * ctx.dt);
        drift(ctx.atoms, ctx.dt);
        check_finite(ctx.atoms, ctx.step)
    }

    fn post_force(&mut self, ctx: &mut Ctx<'_>, _pot: &Potential) -> Result<(), MdError> {
        kick(ctx.atoms, 0.5 * ctx.dt);
        self.thermostat(ctx)?;
        check_finite(ctx.atoms, ctx.step)
    }

    fn conserved_extra(&self) -> f64 {
        self.chain.energy()
    }

    fn ndof(&self, natoms: usize) -> usize {
        ndof_com_removed(natoms)
    }

    fn state(&self) -> Vec<f64> {
        let mut s = Vec::with_capacity(self.chain.state_len());
        self.chain.push_state(&mut s);
        s
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), MdError> {
        super::expect_len("nose-hoover", state, self.chain.state_len())?;
        self.chain.load_state(state);
        Ok(())
    }
}
