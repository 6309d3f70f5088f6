//! Initial velocities.
//!
//! Each component is drawn from the counter-based generator keyed by the atom's global id
//! ([`crate::rng::STREAM_VELOCITY`], step 0), so an atom gets the same raw draw whichever
//! rank owns it; the centre-of-mass removal and rescaling are global reductions.

use halo_comm::Comm;
use halo_core::units::{AMU_A2_PER_FS2_EV, KB_EV_PER_K};

use crate::observables::{kinetic_energy, ndof_com_removed, remove_momentum, temperature};
use crate::{rng, Atoms, MdError};

/// Sets Maxwell–Boltzmann velocities at `temperature` (K) on the atoms this rank owns.
///
/// The centre-of-mass momentum is removed and the velocities rescaled so that the
/// temperature over `3 natoms − 3` degrees of freedom is exactly `temperature` (up to
/// rounding). A zero temperature, or a system with no degree of freedom left (one atom),
/// gives zero velocities. `natoms` is the global atom count.
pub fn maxwell_boltzmann(
    comm: &dyn Comm,
    atoms: &mut Atoms,
    natoms: usize,
    temperature_k: f64,
    seed: u64,
) -> Result<(), MdError> {
    if !temperature_k.is_finite() || temperature_k < 0.0 {
        return Err(MdError::Input(format!(
            "initial temperature must be finite and non-negative, got {temperature_k} K"
        )));
    }
    let kt = KB_EV_PER_K * temperature_k;
    for i in 0..atoms.len() {
        let m = atoms.mass[i];
        if !(m > 0.0 && m.is_finite()) {
            return Err(MdError::Input(format!(
                "atom {} has mass {m} amu; velocities need positive masses",
                atoms.gid[i]
            )));
        }
        let sigma = (kt / (m * AMU_A2_PER_FS2_EV)).sqrt();
        let gid = atoms.gid[i] as u64;
        for a in 0..3 {
            atoms.v[i][a] = sigma * rng::normal(seed, rng::STREAM_VELOCITY, 0, gid, a as u64);
        }
    }
    remove_momentum(comm, atoms)?;
    let ndof = ndof_com_removed(natoms);
    let t = temperature(kinetic_energy(comm, atoms)?, ndof);
    let scale = if t > 0.0 && temperature_k > 0.0 {
        (temperature_k / t).sqrt()
    } else {
        0.0
    };
    for v in &mut atoms.v {
        for c in v.iter_mut() {
            *c *= scale;
        }
    }
    Ok(())
}
