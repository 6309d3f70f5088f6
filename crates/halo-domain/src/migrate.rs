//! Atom migration between subdomains, as LAMMPS `Comm::exchange`: the pieces of
//! [`Domain::migrate`](crate::Domain::migrate).
//!
//! Atoms travel as `u64` records (global id, type, the bits of the three coordinates, then
//! the bits of the payload), so every value arrives bit for bit as it left.

use halo_comm::{Comm, CommExt, Op};
use halo_core::{cell::wrap_unit, Cell, Vec3};

use crate::domain::Frame;
use crate::error::DomainError;
use crate::grid::ProcGrid;

/// Message tag of the migration hops.
const TAG_MIGRATE: u32 = 7100;

/// Values per migrating atom before its payload: global id, type, position (3).
const HEADER: usize = 5;

/// How far (fractional) a coordinate along a periodic axis may sit outside `[0, 1)` and still
/// be placed by its own value: the rounding of `to_frac(cell.wrap(x))`, which
/// [`Domain::decompose`](crate::Domain::decompose) clamps into the edge slices. Anything
/// farther out is placed by its wrapped coordinate.
const PERIODIC_SLACK: f64 = 1e-9;

/// The atoms one rank holds, with the per-atom data that travels with them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalAtoms {
    /// Global id of every atom (`0..natoms` over all ranks, each once).
    pub gids: Vec<usize>,
    /// Type of every atom.
    pub types: Vec<usize>,
    /// Position of every atom (Å), wrapped into the cell along periodic axes.
    pub positions: Vec<Vec3>,
    /// `width` values per atom, atom-major (velocities, masses, image flags…: the caller's).
    pub payload: Vec<f64>,
    /// Payload values per atom.
    pub width: usize,
}

impl LocalAtoms {
    /// No atoms, with `width` payload values per atom.
    pub fn new(width: usize) -> Self {
        LocalAtoms {
            width,
            ..LocalAtoms::default()
        }
    }

    /// Number of atoms.
    pub fn len(&self) -> usize {
        self.gids.len()
    }

    /// Whether there are no atoms.
    pub fn is_empty(&self) -> bool {
        self.gids.is_empty()
    }

    /// The payload of atom `i` (panics if `i` is out of range, as slice indexing does).
    pub fn payload_of(&self, i: usize) -> &[f64] {
        &self.payload[i * self.width..(i + 1) * self.width]
    }

    /// What is wrong with the shapes or values, if anything.
    fn problem(&self) -> Option<String> {
        let n = self.gids.len();
        if self.types.len() != n || self.positions.len() != n {
            return Some(format!(
                "{n} global ids, {} types and {} positions",
                self.types.len(),
                self.positions.len()
            ));
        }
        if n.checked_mul(self.width) != Some(self.payload.len()) {
            return Some(format!(
                "payload has {} values for {n} atoms of width {}",
                self.payload.len(),
                self.width
            ));
        }
        if let Some(i) = self
            .positions
            .iter()
            .position(|x| x.iter().any(|v| !v.is_finite()))
        {
            return Some(format!(
                "position of atom {} (global id {}) is not finite: {:?}",
                i, self.gids[i], self.positions[i]
            ));
        }
        None
    }
}

/// Checks every rank's input and that all ranks agree on the arguments (collective, so
/// that a bad input on one rank fails every rank instead of leaving them waiting).
pub(crate) fn check_input(
    comm: &dyn Comm,
    grid: ProcGrid,
    cell: &Cell,
    has_cell: bool,
    natoms: usize,
    atoms: &LocalAtoms,
) -> Result<(), DomainError> {
    let mine = atoms.problem();
    let h = cell.matrix();
    let pbc = cell.pbc();
    let names = [
        "grid x", "grid y", "grid z", "natoms", "width", "cell", "pbc x", "pbc y", "pbc z",
    ];
    // Small integers and cell entries are exact in f64, so one max-reduction of the values
    // and their negations gives each one's maximum and minimum.
    let mut agreed: Vec<f64> = vec![
        grid.dims()[0] as f64,
        grid.dims()[1] as f64,
        grid.dims()[2] as f64,
        natoms as f64,
        atoms.width as f64,
        f64::from(u8::from(has_cell)),
        f64::from(u8::from(pbc[0])),
        f64::from(u8::from(pbc[1])),
        f64::from(u8::from(pbc[2])),
    ];
    agreed.extend(h.iter().flatten());
    let nvals = agreed.len();
    let negated: Vec<f64> = agreed.iter().map(|v| -v).collect();
    let bad = if mine.is_some() {
        comm.rank() as f64 + 1.0
    } else {
        0.0
    };
    let mut v = vec![bad];
    v.extend(agreed.iter().copied());
    v.extend(negated);
    comm.allreduce_f64(&mut v, Op::Max)?;
    if let Some(msg) = mine {
        return Err(DomainError::Input(format!(
            "migrate: rank {}: {msg}",
            comm.rank()
        )));
    }
    if v[0] > 0.0 {
        return Err(DomainError::Input(format!(
            "migrate: rank {} rejected its atoms (see its error)",
            v[0] as usize - 1
        )));
    }
    if let Some(i) = (0..nvals).find(|&i| v[1 + i] != -v[1 + nvals + i]) {
        return Err(DomainError::Input(format!(
            "migrate: the ranks disagree on the {} (from {} to {})",
            names[i.min(names.len() - 1)],
            -v[1 + nvals + i],
            v[1 + i]
        )));
    }
    if comm.size() != grid.nranks() {
        return Err(DomainError::Grid(format!(
            "communicator has {} ranks, the grid {:?} has {}",
            comm.size(),
            grid.dims(),
            grid.nranks()
        )));
    }
    Ok(())
}

/// The frame of all ranks' atoms, whose fractional coordinates on this rank are `frac`:
/// open axes span the global bounding box, as [`Frame::new`] spans one system's.
pub(crate) fn global_frame(
    comm: &dyn Comm,
    cell: Cell,
    has_cell: bool,
    frac: &[Vec3],
) -> Result<Frame, DomainError> {
    // Negated minima and the maxima in one max-reduction (negation is exact).
    let mut v = [f64::NEG_INFINITY; 6];
    for s in frac {
        for k in 0..3 {
            v[k] = v[k].max(-s[k]);
            v[3 + k] = v[3 + k].max(s[k]);
        }
    }
    comm.allreduce_f64(&mut v, Op::Max)?;
    let count = comm.allreduce_one(frac.len() as u64, Op::Sum)?;
    let bounds = (count > 0).then(|| {
        (
            std::array::from_fn(|k| -v[k]),
            std::array::from_fn(|k| v[3 + k]),
        )
    });
    Ok(Frame::with_bounds(cell, has_cell, bounds))
}

/// The grid slice along axis `k` that owns position `x`.
fn owner_slice(frame: &Frame, k: usize, x: Vec3, p: usize) -> usize {
    let mut s = frame.cell.to_frac(x)[k];
    if frame.periodic[k] && !(-PERIODIC_SLACK..1.0 + PERIODIC_SLACK).contains(&s) {
        s = wrap_unit(s);
    }
    frame.slice(k, s, p)
}

/// Moves every atom to the rank owning its position, dimension by dimension: each hop sends
/// the atoms of a wrong slice one rank towards it (the shorter way round on a periodic axis)
/// and hops repeat until no rank holds a misplaced atom along that axis.
pub(crate) fn route(
    comm: &dyn Comm,
    grid: ProcGrid,
    frame: &Frame,
    natoms: usize,
    mut atoms: LocalAtoms,
) -> Result<LocalAtoms, DomainError> {
    let rank = comm.rank();
    let dims = grid.dims();
    let loc = grid.loc(rank);
    let width = atoms.width;
    let record = HEADER + width;
    let mut send: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    let mut recv: Vec<u64> = Vec::new();
    for k in 0..3 {
        let p = dims[k];
        if p == 1 {
            // Every coordinate falls in the only slice.
            continue;
        }
        // Each hop brings every misplaced atom one slice closer, so the farthest any atom
        // can be is the bound.
        let max_hops = if frame.periodic[k] { p / 2 } else { p - 1 };
        let (mut lower, mut upper) = (loc, loc);
        lower[k] = (loc[k] + p - 1) % p;
        upper[k] = (loc[k] + 1) % p;
        let neighbour = [grid.rank_at(lower), grid.rank_at(upper)];
        for hop in 0.. {
            // Direction of every atom: None stays, Some(0) goes down, Some(1) up.
            let dirs: Vec<Option<usize>> = atoms
                .positions
                .iter()
                .map(|&x| {
                    let t = owner_slice(frame, k, x, p);
                    if t == loc[k] {
                        None
                    } else if frame.periodic[k] {
                        let up = (t + p - loc[k]) % p;
                        Some(usize::from(up <= p / 2))
                    } else {
                        Some(usize::from(t > loc[k]))
                    }
                })
                .collect();
            let misplaced = dirs.iter().filter(|d| d.is_some()).count() as u64;
            let mut counts = [misplaced, atoms.len() as u64];
            comm.allreduce_u64(&mut counts, Op::Sum)?;
            if counts[0] == 0 {
                break;
            }
            if hop == max_hops {
                return Err(DomainError::Lost {
                    expected: natoms,
                    found: counts[1] as usize,
                    detail: format!(
                        "{} atoms still misplaced along axis {k} after {hop} hops",
                        counts[0]
                    ),
                });
            }
            let mut kept = LocalAtoms::new(width);
            send[0].clear();
            send[1].clear();
            for (i, d) in dirs.iter().enumerate() {
                match d {
                    None => {
                        kept.gids.push(atoms.gids[i]);
                        kept.types.push(atoms.types[i]);
                        kept.positions.push(atoms.positions[i]);
                        kept.payload.extend_from_slice(atoms.payload_of(i));
                    }
                    Some(dir) => pack(&atoms, i, &mut send[*dir]),
                }
            }
            atoms = kept;
            // Down first, then up: every rank sends to one neighbour while receiving from
            // the other, so the pairs always match, also when both neighbours are one rank.
            for dir in 0..2 {
                let (to, from) = (neighbour[dir], neighbour[1 - dir]);
                if to == rank {
                    recv.clear();
                    recv.extend_from_slice(&send[dir]);
                } else {
                    comm.sendrecv_slice(to, TAG_MIGRATE, &send[dir], from, TAG_MIGRATE, &mut recv)?;
                }
                if !recv.len().is_multiple_of(record) {
                    return Err(DomainError::Input(format!(
                        "migration message from rank {from} has {} values, not a multiple of \
                         {record}",
                        recv.len()
                    )));
                }
                for r in recv.chunks_exact(record) {
                    atoms.gids.push(r[0] as usize);
                    atoms.types.push(r[1] as usize);
                    atoms.positions.push([r[2], r[3], r[4]].map(f64::from_bits));
                    atoms
                        .payload
                        .extend(r[HEADER..].iter().map(|&b| f64::from_bits(b)));
                }
            }
        }
    }
    Ok(atoms)
}

/// Appends atom `i` of `atoms` to a message.
fn pack(atoms: &LocalAtoms, i: usize, out: &mut Vec<u64>) {
    let x = atoms.positions[i];
    out.extend_from_slice(&[
        atoms.gids[i] as u64,
        atoms.types[i] as u64,
        x[0].to_bits(),
        x[1].to_bits(),
        x[2].to_bits(),
    ]);
    out.extend(atoms.payload_of(i).iter().map(|v| v.to_bits()));
}

/// `Σ g` and `Σ g²` over `g < n`, modulo 2⁶⁴ (as the wrapping all-reduce sums them); `None`
/// for the squares if `n` is too large to compute them exactly.
fn id_sums(n: usize) -> (u64, Option<u64>) {
    let n = n as u128;
    let s1 = (n * n.saturating_sub(1) / 2) as u64;
    let s2 = n
        .checked_mul(n.saturating_sub(1))
        .and_then(|m| m.checked_mul((2 * n).saturating_sub(1)))
        .map(|m| (m / 6) as u64);
    (s1, s2)
}

/// Sorts the atoms by global id, payload with them, and checks (collectively) that all ranks
/// together hold each id of `0..natoms` exactly once.
///
/// The check is the global count, ids out of range, ids twice on one rank, and the sums of
/// the ids and of their squares: an id on two ranks with another missing changes the sum
/// unless several such errors cancel in both sums at once.
pub(crate) fn sort_and_check(
    comm: &dyn Comm,
    natoms: usize,
    atoms: LocalAtoms,
) -> Result<LocalAtoms, DomainError> {
    let mut order: Vec<usize> = (0..atoms.len()).collect();
    order.sort_by_key(|&i| atoms.gids[i]);
    let mut sorted = LocalAtoms::new(atoms.width);
    sorted.gids = order.iter().map(|&i| atoms.gids[i]).collect();
    sorted.types = order.iter().map(|&i| atoms.types[i]).collect();
    sorted.positions = order.iter().map(|&i| atoms.positions[i]).collect();
    sorted.payload = Vec::with_capacity(atoms.payload.len());
    for &i in &order {
        sorted.payload.extend_from_slice(atoms.payload_of(i));
    }
    let twice = sorted.gids.windows(2).filter(|w| w[0] == w[1]).count();
    let out_of_range = sorted.gids.iter().filter(|&&g| g >= natoms).count();
    let (s1, s2) = sorted.gids.iter().fold((0u64, 0u64), |(a, b), &g| {
        let g = g as u64;
        (a.wrapping_add(g), b.wrapping_add(g.wrapping_mul(g)))
    });
    let mut v = [
        sorted.len() as u64,
        twice as u64,
        out_of_range as u64,
        s1,
        s2,
    ];
    comm.allreduce_u64(&mut v, Op::Sum)?;
    let [found, twice, out_of_range, s1, s2] = v;
    let (want1, want2) = id_sums(natoms);
    let mut problems = Vec::new();
    if found != natoms as u64 {
        problems.push(format!("{found} atoms for {natoms} global ids"));
    }
    if out_of_range > 0 {
        problems.push(format!("{out_of_range} global ids not below {natoms}"));
    }
    if twice > 0 {
        problems.push(format!("{twice} global ids twice on one rank"));
    }
    if problems.is_empty() && (s1 != want1 || want2.is_some_and(|w| w != s2)) {
        problems.push("a global id is on two ranks and another is missing".to_string());
    }
    if problems.is_empty() {
        Ok(sorted)
    } else {
        Err(DomainError::Lost {
            expected: natoms,
            found: found as usize,
            detail: problems.join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_sums_match_loops() {
        for n in [0usize, 1, 2, 3, 10, 1001] {
            let (a, b) = id_sums(n);
            assert_eq!(a, (0..n as u64).sum::<u64>(), "n = {n}");
            assert_eq!(
                b,
                Some((0..n as u64).map(|g| g * g).sum::<u64>()),
                "n = {n}"
            );
        }
    }

    #[test]
    fn malformed_atoms_are_described() {
        let mut a = LocalAtoms::new(2);
        assert!(a.problem().is_none());
        a.gids.push(0);
        a.types.push(0);
        a.positions.push([0.0; 3]);
        assert!(a.problem().unwrap().contains("payload"));
        a.payload.extend([1.0, 2.0]);
        assert!(a.problem().is_none());
        a.positions[0][1] = f64::NAN;
        assert!(a.problem().unwrap().contains("not finite"));
        a.types.push(1);
        assert!(a.problem().unwrap().contains("types"));
    }
}
