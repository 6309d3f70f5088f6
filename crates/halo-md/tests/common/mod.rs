//! A small analytic force field (shifted-force Lennard-Jones, brute force with minimum
//! image) and an MD driver that mimics the run loop, for the dynamics tests.
#![allow(dead_code)]

use halo_comm::{Comm, CommExt};
use halo_core::{Cell, Vec3};
use halo_md::dynamics::{Ctx, Integrator};
use halo_md::{Atoms, MdError, Potential};

/// Argon (amu).
pub const AR_MASS: f64 = 39.948;

/// Shifted-force Lennard-Jones: `V(r) − V(rc) − (r − rc) V'(rc)` for `r < rc`, so energy
/// and force are continuous at the cut-off.
#[derive(Debug, Clone, Copy)]
pub struct Lj {
    pub eps: f64,
    pub sigma: f64,
    pub rc: f64,
}

impl Lj {
    /// Argon: ε = 0.0104 eV, σ = 3.405 Å, cut at 7.5 Å.
    pub fn argon() -> Self {
        Lj {
            eps: 0.0104,
            sigma: 3.405,
            rc: 7.5,
        }
    }

    fn v(&self, r: f64) -> f64 {
        let s6 = (self.sigma / r).powi(6);
        4.0 * self.eps * (s6 * s6 - s6)
    }

    fn dv(&self, r: f64) -> f64 {
        let s6 = (self.sigma / r).powi(6);
        -24.0 * self.eps * (2.0 * s6 * s6 - s6) / r
    }

    /// Pair energy at distance `r` (0 beyond the cut-off).
    pub fn energy(&self, r: f64) -> f64 {
        if r >= self.rc {
            0.0
        } else {
            self.v(r) - self.v(self.rc) - (r - self.rc) * self.dv(self.rc)
        }
    }

    /// `−dE/dr / r`: the force on i is this times `x_i − x_j`.
    fn fscal(&self, r: f64) -> f64 {
        (-self.dv(r) + self.dv(self.rc)) / r
    }

    /// Energy, forces and virial `Σ_{i<j} r_ij ⊗ f_ij` of all atoms (minimum image).
    pub fn compute(&self, cell: &Cell, x: &[Vec3]) -> (f64, Vec<Vec3>, [f64; 9]) {
        let fd = cell.face_distances();
        let dmin = fd[0].min(fd[1]).min(fd[2]);
        assert!(
            self.rc < 0.5 * dmin,
            "cut-off {} too long for the cell (face distance {dmin}): minimum image breaks",
            self.rc
        );
        let n = x.len();
        let s: Vec<Vec3> = x.iter().map(|&xi| cell.to_frac(xi)).collect();
        let mut f = vec![[0.0; 3]; n];
        let mut e = 0.0;
        let mut w = [0.0; 9];
        let rc2 = self.rc * self.rc;
        for i in 0..n {
            for j in i + 1..n {
                let mut ds = [0.0; 3];
                for a in 0..3 {
                    let d = s[i][a] - s[j][a];
                    ds[a] = d - d.round();
                }
                let d = cell.to_cart(ds);
                let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                if r2 >= rc2 {
                    continue;
                }
                let r = r2.sqrt();
                e += self.energy(r);
                let fs = self.fscal(r);
                for a in 0..3 {
                    f[i][a] += fs * d[a];
                    f[j][a] -= fs * d[a];
                    for b in 0..3 {
                        w[3 * a + b] += d[a] * fs * d[b];
                    }
                }
            }
        }
        (e, f, w)
    }
}

/// An fcc crystal: `reps` conventional cubic cells of edge `a`.
pub fn fcc_cubic(a: f64, reps: usize) -> (Cell, Vec<Vec3>) {
    let basis = [
        [0.0, 0.0, 0.0],
        [0.5, 0.5, 0.0],
        [0.5, 0.0, 0.5],
        [0.0, 0.5, 0.5],
    ];
    let mut x = Vec::new();
    for i in 0..reps {
        for j in 0..reps {
            for k in 0..reps {
                for b in &basis {
                    x.push([
                        (i as f64 + b[0]) * a,
                        (j as f64 + b[1]) * a,
                        (k as f64 + b[2]) * a,
                    ]);
                }
            }
        }
    }
    let l = a * reps as f64;
    (Cell::orthorhombic(l, l, l).unwrap(), x)
}

/// An fcc crystal in a triclinic (rhombohedral, 60°) cell: `reps³` primitive cells.
pub fn fcc_rhombohedral(a: f64, reps: usize) -> (Cell, Vec<Vec3>) {
    let h = 0.5 * a;
    let prim = [[0.0, h, h], [h, 0.0, h], [h, h, 0.0]];
    let mut x = Vec::new();
    for i in 0..reps {
        for j in 0..reps {
            for k in 0..reps {
                let (fi, fj, fk) = (i as f64, j as f64, k as f64);
                x.push([
                    fi * prim[0][0] + fj * prim[1][0] + fk * prim[2][0],
                    fi * prim[0][1] + fj * prim[1][1] + fk * prim[2][1],
                    fi * prim[0][2] + fj * prim[1][2] + fk * prim[2][2],
                ]);
            }
        }
    }
    let r = reps as f64;
    let m = [
        [r * prim[0][0], r * prim[0][1], r * prim[0][2]],
        [r * prim[1][0], r * prim[1][1], r * prim[1][2]],
        [r * prim[2][0], r * prim[2][1], r * prim[2][2]],
    ];
    (Cell::periodic(m).unwrap(), x)
}

/// The atoms rank `rank` of `nranks` owns: gids `≡ rank (mod nranks)`, sorted.
pub fn split(x: &[Vec3], v: Option<&[Vec3]>, rank: usize, nranks: usize) -> Atoms {
    let mut atoms = Atoms::default();
    for (gid, &xi) in x.iter().enumerate() {
        if gid % nranks != rank {
            continue;
        }
        atoms.gid.push(gid);
        atoms.types.push(0);
        atoms.mass.push(AR_MASS);
        atoms.x.push(xi);
        atoms.v.push(v.map_or([0.0; 3], |v| v[gid]));
        atoms.f.push([0.0; 3]);
        atoms.image.push([0; 3]);
    }
    atoms
}

/// All ranks' `(gid, value)` rows gathered into gid order.
pub fn gather(
    comm: &dyn Comm,
    atoms: &Atoms,
    natoms: usize,
    pick: fn(&Atoms, usize) -> Vec3,
) -> Vec<Vec3> {
    let mut mine = Vec::with_capacity(4 * atoms.len());
    for i in 0..atoms.len() {
        let p = pick(atoms, i);
        mine.extend_from_slice(&[atoms.gid[i] as f64, p[0], p[1], p[2]]);
    }
    let all = comm.allgather(&mine).unwrap();
    let mut out = vec![[f64::NAN; 3]; natoms];
    for part in all {
        for row in part.chunks(4) {
            out[row[0] as usize] = [row[1], row[2], row[3]];
        }
    }
    out
}

/// Positions of all atoms in gid order.
pub fn all_x(comm: &dyn Comm, atoms: &Atoms, natoms: usize) -> Vec<Vec3> {
    gather(comm, atoms, natoms, |a, i| a.x[i])
}

/// Velocities of all atoms in gid order.
pub fn all_v(comm: &dyn Comm, atoms: &Atoms, natoms: usize) -> Vec<Vec3> {
    gather(comm, atoms, natoms, |a, i| a.v[i])
}

/// Evaluates the force field on all atoms (positions allgathered) and stores this rank's forces.
pub fn forces(
    comm: &dyn Comm,
    atoms: &mut Atoms,
    cell: &Cell,
    natoms: usize,
    ff: &Lj,
) -> Potential {
    let x = all_x(comm, atoms, natoms);
    let (energy, f, virial) = ff.compute(cell, &x);
    for i in 0..atoms.len() {
        atoms.f[i] = f[atoms.gid[i]];
    }
    Potential { energy, virial }
}

/// One rank's view of a running simulation.
pub struct Sim<'c> {
    pub comm: &'c dyn Comm,
    pub atoms: Atoms,
    pub cell: Option<Cell>,
    pub natoms: usize,
    pub dt: f64,
    pub step: u64,
    pub pot: Potential,
    pub ff: Lj,
}

impl<'c> Sim<'c> {
    /// Builds the rank's share and evaluates the initial forces.
    pub fn new(
        comm: &'c dyn Comm,
        cell: Cell,
        x: &[Vec3],
        v: Option<&[Vec3]>,
        dt: f64,
        ff: Lj,
    ) -> Self {
        let mut atoms = split(x, v, comm.rank(), comm.size());
        let pot = forces(comm, &mut atoms, &cell, x.len(), &ff);
        Sim {
            comm,
            atoms,
            cell: Some(cell),
            natoms: x.len(),
            dt,
            step: 0,
            pot,
            ff,
        }
    }

    fn ctx(&mut self) -> Ctx<'_> {
        Ctx {
            comm: self.comm,
            atoms: &mut self.atoms,
            cell: &mut self.cell,
            natoms: self.natoms,
            dt: self.dt,
            step: self.step,
        }
    }

    /// `integ.setup` with the current forces.
    pub fn setup(&mut self, integ: &mut dyn Integrator) -> Result<(), MdError> {
        let pot = self.pot;
        integ.setup(&mut self.ctx(), &pot)
    }

    /// One full step: pre-force, forces, post-force.
    pub fn step(&mut self, integ: &mut dyn Integrator) -> Result<(), MdError> {
        self.step += 1;
        integ.pre_force(&mut self.ctx())?;
        let cell = self.cell.expect("cell");
        self.pot = forces(self.comm, &mut self.atoms, &cell, self.natoms, &self.ff);
        let pot = self.pot;
        integ.post_force(&mut self.ctx(), &pot)
    }

    /// Global kinetic energy (eV).
    pub fn ke(&self) -> f64 {
        halo_md::observables::kinetic_energy(self.comm, &self.atoms).unwrap()
    }

    /// Instantaneous pressure (bar), kinetic part included.
    pub fn pressure_bar(&self) -> f64 {
        let k = halo_md::observables::kinetic_tensor(self.comm, &self.atoms).unwrap();
        halo_md::observables::pressure_bar(&k, &self.pot.virial, self.cell.unwrap().volume())
    }
}

/// Mean and standard error of the mean from `nblocks` block averages.
pub fn block_stats(xs: &[f64], nblocks: usize) -> (f64, f64) {
    let bl = xs.len() / nblocks;
    let means: Vec<f64> = (0..nblocks)
        .map(|b| xs[b * bl..(b + 1) * bl].iter().sum::<f64>() / bl as f64)
        .collect();
    let m = means.iter().sum::<f64>() / nblocks as f64;
    let var = means.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (nblocks - 1) as f64;
    (m, (var / nblocks as f64).sqrt())
}

/// Least-squares slope of `ys` against the sample index.
pub fn slope(ys: &[f64]) -> f64 {
    let n = ys.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = ys.iter().sum::<f64>() / n;
    let mut sxy = 0.0;
    let mut sxx = 0.0;
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f64 - mx;
        sxy += dx * (y - my);
        sxx += dx * dx;
    }
    sxy / sxx
}
