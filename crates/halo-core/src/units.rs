//! Units and conversion constants (metal units: eV, Å, fs, amu, K).
//!
//! Values are CODATA 2018 exact or recommended values, the same ASE uses (`ase.units`).

/// Elementary charge in coulomb (exact), i.e. joules per eV.
pub const EV_J: f64 = 1.602_176_634e-19;
/// Atomic mass unit in kg.
pub const AMU_KG: f64 = 1.660_539_066_60e-27;
/// Boltzmann constant in eV/K.
pub const KB_EV_PER_K: f64 = 8.617_333_262e-5;
/// Kinetic energy of 1 amu moving at 1 Å/fs, in eV (m v² with m in amu, v in Å/fs → eV).
pub const AMU_A2_PER_FS2_EV: f64 = AMU_KG * 1.0e10 / EV_J;
/// 1 eV/Å³ expressed in GPa.
pub const EV_PER_A3_GPA: f64 = EV_J * 1.0e30 / 1.0e9;
/// 1 eV/Å³ expressed in bar.
pub const EV_PER_A3_BAR: f64 = EV_J * 1.0e30 / 1.0e5;
/// Femtoseconds per picosecond.
pub const FS_PER_PS: f64 = 1.0e3;

/// Converts a pressure from eV/Å³ to GPa.
pub fn ev_per_a3_to_gpa(p: f64) -> f64 {
    p * EV_PER_A3_GPA
}

/// Converts a pressure from GPa to eV/Å³.
pub fn gpa_to_ev_per_a3(p: f64) -> f64 {
    p / EV_PER_A3_GPA
}

/// Converts a pressure from eV/Å³ to bar.
pub fn ev_per_a3_to_bar(p: f64) -> f64 {
    p * EV_PER_A3_BAR
}

/// Converts a pressure from bar to eV/Å³.
pub fn bar_to_ev_per_a3(p: f64) -> f64 {
    p / EV_PER_A3_BAR
}

/// Kinetic energy in eV of a particle of `mass` amu with velocity `v` in Å/fs.
pub fn kinetic_energy(mass: f64, v: [f64; 3]) -> f64 {
    0.5 * mass * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) * AMU_A2_PER_FS2_EV
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_conversions() {
        // ASE: 1 eV/Å³ = 160.21766208 GPa; 1 amu Å²/fs² = 103.6427 eV.
        assert!((EV_PER_A3_GPA - 160.217_663_4).abs() < 1e-6);
        assert!((AMU_A2_PER_FS2_EV - 103.642_696_5).abs() < 1e-6);
        assert!((ev_per_a3_to_bar(1.0) - 1.602_176_634e6).abs() < 1e-3);
        assert!((gpa_to_ev_per_a3(ev_per_a3_to_gpa(0.37)) - 0.37).abs() < 1e-15);
        assert!((bar_to_ev_per_a3(ev_per_a3_to_bar(0.37)) - 0.37).abs() < 1e-15);
        // 3/2 kT at 300 K for one particle equals KE at the matching speed.
        let m = 39.948;
        let v = (3.0 * KB_EV_PER_K * 300.0 / (m * AMU_A2_PER_FS2_EV)).sqrt();
        let ke = kinetic_energy(m, [v, 0.0, 0.0]);
        assert!((ke - 1.5 * KB_EV_PER_K * 300.0).abs() < 1e-15);
    }
}
