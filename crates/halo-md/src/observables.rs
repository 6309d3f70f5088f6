//! Global thermodynamic observables: kinetic energy and tensor, temperature, pressure.
//!
//! Every global quantity is a per-rank sum over the owned atoms in their (gid-sorted) local
//! order, then an all-reduce that adds the ranks in rank order
//! ([`halo_comm::CommExt::allreduce_f64`]). The result is therefore bit-reproducible for a
//! given rank count (and identical on every rank). Several quantities needed together are
//! packed into one all-reduce.
//!
//! Tensors are 3×3, row-major `[f64; 9]`. The virial is DeePMD-kit's `Σ x ⊗ F` (positive
//! when repulsive), so the pressure tensor is `(Σ m v ⊗ v + W) / V`.

use halo_comm::{Comm, CommExt, Op};
use halo_core::units::{ev_per_a3_to_bar, AMU_A2_PER_FS2_EV, KB_EV_PER_K};

use crate::{Atoms, MdError};

/// Sums `data` element-wise over all ranks (rank order).
pub fn allreduce_sum(comm: &dyn Comm, data: &mut [f64]) -> Result<(), MdError> {
    comm.allreduce_f64(data, Op::Sum)?;
    Ok(())
}

/// Maximum of `data` element-wise over all ranks (NaN wins).
pub fn allreduce_max(comm: &dyn Comm, data: &mut [f64]) -> Result<(), MdError> {
    comm.allreduce_f64(data, Op::Max)?;
    Ok(())
}

/// This rank's `Σ m v ⊗ v` (eV), row-major.
pub fn local_kinetic_tensor(atoms: &Atoms) -> [f64; 9] {
    let mut k = [0.0; 9];
    for (m, v) in atoms.mass.iter().zip(&atoms.v) {
        let mc = m * AMU_A2_PER_FS2_EV;
        for a in 0..3 {
            for b in 0..3 {
                k[3 * a + b] += mc * v[a] * v[b];
            }
        }
    }
    k
}

/// Global `Σ m v ⊗ v` (eV), row-major; its trace is twice the kinetic energy.
pub fn kinetic_tensor(comm: &dyn Comm, atoms: &Atoms) -> Result<[f64; 9], MdError> {
    let mut k = local_kinetic_tensor(atoms);
    allreduce_sum(comm, &mut k)?;
    Ok(k)
}

/// This rank's kinetic energy (eV).
pub fn local_kinetic_energy(atoms: &Atoms) -> f64 {
    let mut twoke = 0.0;
    for (m, v) in atoms.mass.iter().zip(&atoms.v) {
        twoke += m * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    }
    0.5 * twoke * AMU_A2_PER_FS2_EV
}

/// Global kinetic energy (eV).
pub fn kinetic_energy(comm: &dyn Comm, atoms: &Atoms) -> Result<f64, MdError> {
    let mut ke = [local_kinetic_energy(atoms)];
    allreduce_sum(comm, &mut ke)?;
    Ok(ke[0])
}

/// Temperature (K) of kinetic energy `ke` (eV) shared by `ndof` degrees of freedom
/// (0 when there are none).
pub fn temperature(ke: f64, ndof: usize) -> f64 {
    if ndof == 0 {
        0.0
    } else {
        2.0 * ke / (ndof as f64 * KB_EV_PER_K)
    }
}

/// Degrees of freedom of `natoms` free atoms with the centre-of-mass momentum removed.
pub fn ndof_com_removed(natoms: usize) -> usize {
    (3 * natoms).saturating_sub(3)
}

/// Pressure tensor (eV/Å³) from the kinetic tensor `Σ m v ⊗ v` and the virial (both eV).
pub fn pressure_tensor(kinetic: &[f64; 9], virial: &[f64; 9], volume: f64) -> [f64; 9] {
    let mut p = [0.0; 9];
    for i in 0..9 {
        p[i] = (kinetic[i] + virial[i]) / volume;
    }
    p
}

/// Scalar pressure (eV/Å³): a third of the pressure tensor's trace.
pub fn pressure(kinetic: &[f64; 9], virial: &[f64; 9], volume: f64) -> f64 {
    (kinetic[0] + kinetic[4] + kinetic[8] + virial[0] + virial[4] + virial[8]) / (3.0 * volume)
}

/// Scalar pressure in bar.
pub fn pressure_bar(kinetic: &[f64; 9], virial: &[f64; 9], volume: f64) -> f64 {
    ev_per_a3_to_bar(pressure(kinetic, virial, volume))
}

/// Global total mass (amu) and momentum `Σ m v` (amu Å/fs), in one all-reduce.
pub fn mass_and_momentum(comm: &dyn Comm, atoms: &Atoms) -> Result<(f64, [f64; 3]), MdError> {
    let mut s = [0.0; 4];
    for (m, v) in atoms.mass.iter().zip(&atoms.v) {
        s[0] += m;
        s[1] += m * v[0];
        s[2] += m * v[1];
        s[3] += m * v[2];
    }
    allreduce_sum(comm, &mut s)?;
    Ok((s[0], [s[1], s[2], s[3]]))
}

/// Removes the centre-of-mass velocity `Σ m v / Σ m` from every atom.
pub fn remove_momentum(comm: &dyn Comm, atoms: &mut Atoms) -> Result<(), MdError> {
    let (mass, p) = mass_and_momentum(comm, atoms)?;
    if mass <= 0.0 {
        return Ok(());
    }
    let vcm = [p[0] / mass, p[1] / mass, p[2] / mass];
    for v in &mut atoms.v {
        for a in 0..3 {
            v[a] -= vcm[a];
        }
    }
    Ok(())
}

/// Largest force norm over all atoms (eV/Å); 0 with no atom, NaN if any force is NaN.
pub fn max_force(comm: &dyn Comm, atoms: &Atoms) -> Result<f64, MdError> {
    let mut m = [0.0f64];
    for f in &atoms.f {
        let f2 = f[0] * f[0] + f[1] * f[1] + f[2] * f[2];
        // `max` drops NaN; keep it so a broken force cannot look converged.
        if f2.is_nan() || f2 > m[0] {
            m[0] = f2;
        }
    }
    allreduce_max(comm, &mut m)?;
    Ok(m[0].sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ideal_gas_pressure() {
        // N kT / V with kinetic tensor diag(N kT) and zero virial.
        let n = 10.0;
        let kt = KB_EV_PER_K * 300.0;
        let k = [n * kt, 0.0, 0.0, 0.0, n * kt, 0.0, 0.0, 0.0, n * kt];
        let p = pressure(&k, &[0.0; 9], 1000.0);
        assert!((p - n * kt / 1000.0).abs() < 1e-18);
        assert!((temperature(1.5 * n * kt, 30) - 300.0).abs() < 1e-9);
        assert_eq!(temperature(1.0, 0), 0.0);
    }
}
