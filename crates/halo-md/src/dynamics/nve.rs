//! Velocity Verlet (microcanonical).

use super::{check_finite, drift, kick, Ctx, Integrator};
use crate::observables::ndof_com_removed;
use crate::{MdError, Potential};

/// Velocity Verlet: `v += dt/2 a; x += dt v` before the forces, `v += dt/2 a` after.
#[derive(Debug, Clone, Default)]
pub struct Nve;

impl Nve {
    /// A velocity-Verlet integrator (it has no parameter and no state).
    pub fn new() -> Self {
        Nve
    }
}

impl Integrator for Nve {
    fn name(&self) -> &'static str {
        "nve"
    }

    fn setup(&mut self, _ctx: &mut Ctx<'_>, _pot: &Potential) -> Result<(), MdError> {
        Ok(())
    }

    fn pre_force(&mut self, ctx: &mut Ctx<'_>) -> Result<(), MdError> {
        kick(ctx.atoms, 0.5 * ctx.dt);
        drift(ctx.atoms, ctx.dt);
        check_finite(ctx.atoms, ctx.step)
    }

    fn post_force(&mut self, ctx: &mut Ctx<'_>, _pot: &Potential) -> Result<(), MdError> {
        kick(ctx.atoms, 0.5 * ctx.dt);
        check_finite(ctx.atoms, ctx.step)
    }

    fn conserved_extra(&self) -> f64 {
        0.0
    }

    fn ndof(&self, natoms: usize) -> usize {
        // Velocity Verlet conserves the total momentum; initial velocities have none.
        ndof_com_removed(natoms)
    }

    fn state(&self) -> Vec<f64> {
        Vec::new()
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), MdError> {
        super::expect_len("nve", state, 0)
    }
}
