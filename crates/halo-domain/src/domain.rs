//! Decomposition into subdomains and the ghost swaps of LAMMPS `CommBrick::borders`.

use halo_comm::{Comm, CommExt};
use halo_core::{Cell, Exchange, RowsMut, System, Vec3};

use crate::error::DomainError;
use crate::exchange::DomainExchange;
use crate::grid::ProcGrid;
use crate::migrate::{self, LocalAtoms};

/// Relative and absolute slack on the reach of a face, so that rounding in fractional
/// coordinates never drops an image at exactly the cutoff (extra ghosts are harmless).
const REACH_SLACK: f64 = 1e-9;

/// Smallest thickness (Å) of an open axis, so a flat bounding box still splits.
const MIN_OPEN_THICKNESS: f64 = 1e-6;

/// Most swap levels per dimension before the cutoff is judged absurd for the box.
const MAX_LEVELS: usize = 1024;

/// Message tag of the ghost set-up.
const TAG_BORDERS: u32 = 7000;

/// Values per ghost in a set-up message: base position (3), shift (3), type, global id.
const RECORD: usize = 8;

/// The box in fractional coordinates: `[0, 1)` along periodic axes, the atoms' bounding box
/// along open ones.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    /// The cell; the identity with no periodic axis for an isolated system.
    pub cell: Cell,
    /// Whether the system had a cell (otherwise coordinates are Cartesian).
    pub has_cell: bool,
    /// Periodic axes.
    pub periodic: [bool; 3],
    /// Lower fractional bound of the box.
    pub lo: Vec3,
    /// Upper fractional bound of the box.
    pub hi: Vec3,
    /// Perpendicular distance between the cell's opposite faces (Å per fractional unit).
    pub face: Vec3,
}

/// Where every atom of a system sits in its [`Frame`].
pub(crate) struct Placed {
    /// Wrapped position of every atom (the coordinates a model sees for owners).
    pub wrapped: Vec<Vec3>,
    /// Fractional coordinate of every wrapped position.
    pub frac: Vec<Vec3>,
}

impl Frame {
    /// The frame of `system` and its atoms' places; fails on an invalid system.
    pub fn new(system: &System) -> Result<(Frame, Placed), DomainError> {
        system
            .validate()
            .map_err(|e| DomainError::Input(e.to_string()))?;
        let (cell, has_cell) = Frame::base_cell(system.cell.as_ref())?;
        // Wrapped exactly as `EnergyModel::evaluate_system` wraps, so owners sit where they
        // sit on one rank.
        let wrapped: Vec<Vec3> = if has_cell {
            system.positions.iter().map(|&x| cell.wrap(x)).collect()
        } else {
            system.positions.clone()
        };
        let frac: Vec<Vec3> = wrapped.iter().map(|&x| cell.to_frac(x)).collect();
        let bounds = (!frac.is_empty()).then(|| {
            frac.iter().fold(
                ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]),
                |(mut mn, mut mx), s| {
                    for k in 0..3 {
                        mn[k] = mn[k].min(s[k]);
                        mx[k] = mx[k].max(s[k]);
                    }
                    (mn, mx)
                },
            )
        });
        let frame = Frame::with_bounds(cell, has_cell, bounds);
        Ok((frame, Placed { wrapped, frac }))
    }

    /// The cell a frame works in: `cell` itself, or the identity with no periodic axis for an
    /// isolated system (so fractional coordinates are Cartesian); the flag says which.
    pub(crate) fn base_cell(cell: Option<&Cell>) -> Result<(Cell, bool), DomainError> {
        Ok(match cell {
            Some(c) => (*c, true),
            None => (
                Cell::new(
                    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                    [false; 3],
                )
                .map_err(|e| DomainError::Input(e.to_string()))?,
                false,
            ),
        })
    }

    /// The frame of `cell` whose open axes span the fractional bounding box `bounds` (`None`
    /// when there are no atoms); periodic axes span `[0, 1)`.
    pub(crate) fn with_bounds(cell: Cell, has_cell: bool, bounds: Option<(Vec3, Vec3)>) -> Frame {
        let periodic = cell.pbc();
        let face = cell.face_distances();
        let mut lo = [0.0; 3];
        let mut hi = [1.0; 3];
        for k in (0..3).filter(|&k| !periodic[k]) {
            (lo[k], hi[k]) = match bounds {
                Some((mn, mx)) => (mn[k], mx[k]),
                None => (0.0, 1.0),
            };
            let min_extent = MIN_OPEN_THICKNESS / face[k];
            if hi[k] - lo[k] < min_extent {
                hi[k] = lo[k] + min_extent;
            }
        }
        Frame {
            cell,
            has_cell,
            periodic,
            lo,
            hi,
            face,
        }
    }

    /// Thickness of the box along each axis (Å).
    pub fn thickness(&self) -> Vec3 {
        std::array::from_fn(|k| self.face[k] * (self.hi[k] - self.lo[k]))
    }

    /// Grid slice along axis `k` holding fractional coordinate `s`.
    pub(crate) fn slice(&self, k: usize, s: f64, p: usize) -> usize {
        let w = (self.hi[k] - self.lo[k]) / p as f64;
        let i = ((s - self.lo[k]) / w).floor();
        if i <= 0.0 {
            0
        } else {
            (i as usize).min(p - 1)
        }
    }
}

/// One swap of the ghost plan (LAMMPS `CommBrick` vocabulary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    /// Rank this swap sends to.
    pub sendproc: usize,
    /// Rank this swap receives from.
    pub recvproc: usize,
    /// Extended rows sent, in order (local atoms or earlier ghosts).
    pub sendlist: Vec<usize>,
    /// First extended row of the ghost block received.
    pub firstrecv: usize,
    /// Number of ghost rows received.
    pub recvnum: usize,
    /// Periodic shift (in lattice vectors) added to the images this swap sends.
    pub shift: [i32; 3],
}

impl Swap {
    /// Number of rows sent.
    pub fn sendnum(&self) -> usize {
        self.sendlist.len()
    }
}

/// One rank's subdomain: its local atoms (global-id order) and, after [`Domain::borders`],
/// its ghosts and the swap plan that fills them.
#[derive(Debug, Clone)]
pub struct Domain {
    grid: ProcGrid,
    rank: usize,
    loc: [usize; 3],
    frame: Frame,
    blo: Vec3,
    bhi: Vec3,
    natoms: usize,
    nloc: usize,
    rcut: Option<f64>,
    coords: Vec<Vec3>,
    base: Vec<Vec3>,
    frac: Vec<Vec3>,
    shifts: Vec<[i32; 3]>,
    gids: Vec<usize>,
    types: Vec<usize>,
    swaps: Vec<Swap>,
}

impl Domain {
    /// The subdomain of `rank` on `grid`: the atoms whose wrapped fractional coordinates fall
    /// in its slice of the box. No ghosts yet; every rank can call this on the full system
    /// without communicating.
    pub fn decompose(system: &System, grid: ProcGrid, rank: usize) -> Result<Domain, DomainError> {
        if rank >= grid.nranks() {
            return Err(DomainError::Grid(format!(
                "rank {rank} is outside a grid of {} ranks",
                grid.nranks()
            )));
        }
        let (frame, placed) = Frame::new(system)?;
        let dims = grid.dims();
        let loc = grid.loc(rank);
        let mine: Vec<usize> = (0..system.len())
            .filter(|&i| (0..3).all(|k| frame.slice(k, placed.frac[i][k], dims[k]) == loc[k]))
            .collect();
        let base: Vec<Vec3> = mine.iter().map(|&i| placed.wrapped[i]).collect();
        let frac = mine.iter().map(|&i| placed.frac[i]).collect();
        let types = mine.iter().map(|&i| system.types[i]).collect();
        Ok(Domain::from_locals(
            grid,
            rank,
            frame,
            system.len(),
            base,
            frac,
            types,
            mine,
        ))
    }

    /// A domain with local atoms only (given in global-id order) on `rank`'s slice of
    /// `frame`.
    #[allow(clippy::too_many_arguments)]
    fn from_locals(
        grid: ProcGrid,
        rank: usize,
        frame: Frame,
        natoms: usize,
        base: Vec<Vec3>,
        frac: Vec<Vec3>,
        types: Vec<usize>,
        gids: Vec<usize>,
    ) -> Domain {
        let dims = grid.dims();
        let loc = grid.loc(rank);
        let blo = std::array::from_fn(|k| {
            frame.lo[k] + (frame.hi[k] - frame.lo[k]) * loc[k] as f64 / dims[k] as f64
        });
        let bhi = std::array::from_fn(|k| {
            if loc[k] + 1 == dims[k] {
                frame.hi[k]
            } else {
                frame.lo[k] + (frame.hi[k] - frame.lo[k]) * (loc[k] + 1) as f64 / dims[k] as f64
            }
        });
        let nloc = gids.len();
        Domain {
            grid,
            rank,
            loc,
            blo,
            bhi,
            natoms,
            nloc,
            rcut: None,
            coords: base.clone(),
            base,
            frac,
            shifts: vec![[0; 3]; nloc],
            types,
            gids,
            swaps: Vec::new(),
            frame,
        }
    }

    /// Redistributes atoms so that each sits on the rank whose subdomain holds its position
    /// (collective: every rank of `comm` calls it with the same `grid`, `cell` and `natoms`).
    ///
    /// `atoms` may be any split of the system over the ranks (all on rank 0 after reading a
    /// checkpoint, the previous step's owners in a run, another grid's owners after a
    /// restart). Positions are used bit for bit as given and must already be wrapped into
    /// the cell along periodic axes; an atom outside `[0, 1)` along a periodic axis is placed
    /// by its wrapped fractional coordinate but keeps its position. Open axes span the
    /// global bounding box of all atoms. Atoms travel hop by hop to neighbouring ranks, one
    /// dimension at a time, as LAMMPS `Comm::exchange` moves them, with their payload.
    ///
    /// Returns this rank's domain (local atoms in global-id order, no ghosts yet: call
    /// [`Domain::borders`]) and its atoms in the same order. With the positions
    /// `cell.wrap(p)` of a system whose positions are `p`, the result equals
    /// [`Domain::decompose`] of that system bit for bit, and so do the ghosts after
    /// `borders`. Fails with [`DomainError::Lost`] on every rank when the atoms found are not
    /// exactly the global ids `0..natoms` once each, and with [`DomainError::Input`] on every
    /// rank when any rank's input is malformed or the ranks disagree on the arguments.
    pub fn migrate(
        comm: &dyn Comm,
        grid: ProcGrid,
        cell: Option<&Cell>,
        natoms: usize,
        atoms: LocalAtoms,
    ) -> Result<(Domain, LocalAtoms), DomainError> {
        let (cell, has_cell) = Frame::base_cell(cell)?;
        migrate::check_input(comm, grid, &cell, has_cell, natoms, &atoms)?;
        let frac: Vec<Vec3> = atoms.positions.iter().map(|&x| cell.to_frac(x)).collect();
        let frame = migrate::global_frame(comm, cell, has_cell, &frac)?;
        let atoms = migrate::route(comm, grid, &frame, natoms, atoms)?;
        let atoms = migrate::sort_and_check(comm, natoms, atoms)?;
        let frac = atoms.positions.iter().map(|&x| cell.to_frac(x)).collect();
        let domain = Domain::from_locals(
            grid,
            comm.rank(),
            frame,
            natoms,
            atoms.positions.clone(),
            frac,
            atoms.types.clone(),
            atoms.gids.clone(),
        );
        Ok((domain, atoms))
    }

    /// [`Domain::decompose`] for `comm`'s rank followed by [`Domain::borders`].
    pub fn build(
        comm: &dyn Comm,
        system: &System,
        grid: ProcGrid,
        rcut: f64,
    ) -> Result<Domain, DomainError> {
        let mut d = Domain::decompose(system, grid, comm.rank())?;
        d.borders(comm, rcut)?;
        Ok(d)
    }

    /// Builds the ghosts within `rcut` of the subdomain through the swaps (collective: every
    /// rank of the grid must call it with the same cutoff). Replaces earlier ghosts.
    pub fn borders(&mut self, comm: &dyn Comm, rcut: f64) -> Result<(), DomainError> {
        if comm.size() != self.grid.nranks() || comm.rank() != self.rank {
            return Err(DomainError::Grid(format!(
                "communicator is rank {} of {}, the domain is rank {} of a {:?} grid",
                comm.rank(),
                comm.size(),
                self.rank,
                self.grid.dims()
            )));
        }
        if !(rcut.is_finite() && rcut > 0.0) {
            return Err(DomainError::Input(format!(
                "cutoff must be positive and finite, got {rcut}"
            )));
        }
        self.truncate_ghosts();
        self.rcut = Some(rcut);
        let dims = self.grid.dims();
        let fr = self.frame;
        let reach: Vec3 =
            std::array::from_fn(|k| rcut / fr.face[k] * (1.0 + REACH_SLACK) + REACH_SLACK);
        let mut send: Vec<f64> = Vec::new();
        let mut recv: Vec<f64> = Vec::new();
        for k in 0..3 {
            let p = dims[k];
            let width = (fr.hi[k] - fr.lo[k]) / p as f64;
            let levels = (reach[k] / width).ceil();
            if levels.is_nan() || levels > MAX_LEVELS as f64 {
                return Err(DomainError::Input(format!(
                    "cutoff {rcut} Å needs more than {MAX_LEVELS} swap levels along axis {k} \
                     (subdomain thickness {:.3e} Å)",
                    width * fr.face[k]
                )));
            }
            let levels = levels as usize;
            let levels = if fr.periodic[k] {
                levels.max(1)
            } else {
                levels.min(p - 1)
            };
            let n0 = self.nall();
            // Level 0 sends from everything present when the dimension starts; level l
            // forwards what level l − 1 received in the same direction.
            let mut candidates = [(0, n0), (0, n0)];
            for _ in 0..levels {
                let mut received = [(0, 0); 2];
                for (dir, cand) in candidates.iter().enumerate() {
                    let first = self.nall();
                    self.swap(comm, k, dir, *cand, reach[k], &mut send, &mut recv)?;
                    received[dir] = (first, self.nall());
                }
                candidates = received;
            }
        }
        Ok(())
    }

    /// One swap along axis `k`: `dir` 0 sends to the lower neighbour (atoms near the lower
    /// face), 1 to the upper; candidates are rows `cand.0..cand.1`.
    #[allow(clippy::too_many_arguments)]
    fn swap(
        &mut self,
        comm: &dyn Comm,
        k: usize,
        dir: usize,
        cand: (usize, usize),
        reach: f64,
        send: &mut Vec<f64>,
        recv: &mut Vec<f64>,
    ) -> Result<(), DomainError> {
        let p = self.grid.dims()[k];
        let (mut lower, mut upper) = (self.loc, self.loc);
        lower[k] = (self.loc[k] + p - 1) % p;
        upper[k] = (self.loc[k] + 1) % p;
        let (to, from) = if dir == 0 {
            (lower, upper)
        } else {
            (upper, lower)
        };
        let (sendproc, recvproc) = (self.grid.rank_at(to), self.grid.rank_at(from));
        let at_edge = if dir == 0 {
            self.loc[k] == 0
        } else {
            self.loc[k] + 1 == p
        };
        let mut shift = [0i32; 3];
        if at_edge {
            shift[k] = if dir == 0 { 1 } else { -1 };
        }
        // An open axis has no image beyond its edge: the swap sends nothing.
        let sends = self.frame.periodic[k] || !at_edge;
        let sendlist: Vec<usize> = if sends {
            (cand.0..cand.1)
                .filter(|&i| {
                    let s = self.frac[i][k];
                    if dir == 0 {
                        s <= self.blo[k] + reach
                    } else {
                        s >= self.bhi[k] - reach
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        send.clear();
        for &i in &sendlist {
            let b = self.base[i];
            let n = self.shifts[i];
            send.extend_from_slice(&[
                b[0],
                b[1],
                b[2],
                f64::from(n[0] + shift[0]),
                f64::from(n[1] + shift[1]),
                f64::from(n[2] + shift[2]),
                self.types[i] as f64,
                self.gids[i] as f64,
            ]);
        }
        if sendproc == self.rank {
            recv.clear();
            recv.extend_from_slice(send);
        } else {
            comm.sendrecv_slice(sendproc, TAG_BORDERS, send, recvproc, TAG_BORDERS, recv)?;
        }
        if !recv.len().is_multiple_of(RECORD) {
            return Err(DomainError::Input(format!(
                "ghost message from rank {recvproc} has {} values, not a multiple of {RECORD}",
                recv.len()
            )));
        }
        let firstrecv = self.nall();
        for r in recv.chunks_exact(RECORD) {
            let b = [r[0], r[1], r[2]];
            let n = [r[3] as i32, r[4] as i32, r[5] as i32];
            let s = self.frame.cell.to_frac(b);
            self.coords.push(self.image(b, n));
            self.base.push(b);
            self.frac
                .push(std::array::from_fn(|a| s[a] + f64::from(n[a])));
            self.shifts.push(n);
            self.types.push(r[6] as usize);
            self.gids.push(r[7] as usize);
        }
        self.swaps.push(Swap {
            sendproc,
            recvproc,
            sendlist,
            firstrecv,
            recvnum: self.nall() - firstrecv,
            shift,
        });
        Ok(())
    }

    /// Moves the local atoms to `positions` (`nloc` rows in local order, Å) and every ghost
    /// with its owner, keeping the atom sets and the swap plan: the per-step update between
    /// rebuilds (collective). Ghosts become `owner + shift · H` with the decomposition's cell;
    /// an atom that leaves its subdomain stays local until the next [`Domain::decompose`].
    pub fn refresh(&mut self, comm: &dyn Comm, positions: &[Vec3]) -> Result<(), DomainError> {
        self.check_positions(positions)?;
        self.move_atoms(comm, positions)
    }

    /// [`Domain::refresh`] with a new cell, as a barostat changes it between rebuilds
    /// (collective): ghosts become `owner + shift · H_new` and face distances follow the new
    /// cell, while the subdomains keep their fractional slices. The new cell must have the
    /// same periodic axes; an isolated system (no cell) cannot take one. Ghosts found for the
    /// old cell are kept, so a shrinking cell should be rebuilt (`migrate` + `borders`)
    /// before its images come closer than the cutoff's skin allows.
    pub fn refresh_cell(
        &mut self,
        comm: &dyn Comm,
        positions: &[Vec3],
        cell: &Cell,
    ) -> Result<(), DomainError> {
        if !self.frame.has_cell {
            return Err(DomainError::Input(
                "refresh_cell on a domain of an isolated system (no cell)".to_string(),
            ));
        }
        if cell.pbc() != self.frame.periodic {
            return Err(DomainError::Input(format!(
                "refresh_cell changes periodicity from {:?} to {:?}",
                self.frame.periodic,
                cell.pbc()
            )));
        }
        self.check_positions(positions)?;
        self.frame.cell = *cell;
        self.frame.face = cell.face_distances();
        self.move_atoms(comm, positions)
    }

    /// Checks that `positions` has one finite row per local atom.
    fn check_positions(&self, positions: &[Vec3]) -> Result<(), DomainError> {
        if positions.len() != self.nloc {
            return Err(DomainError::Input(format!(
                "{} positions for {} local atoms",
                positions.len(),
                self.nloc
            )));
        }
        if let Some(i) = positions
            .iter()
            .position(|x| x.iter().any(|v| !v.is_finite()))
        {
            return Err(DomainError::Input(format!(
                "position of local atom {i} is not finite: {:?}",
                positions[i]
            )));
        }
        Ok(())
    }

    /// Sends the owners' new positions along the swap plan and rebuilds every row from its
    /// owner's position and shift in the frame's current cell.
    fn move_atoms(&mut self, comm: &dyn Comm, positions: &[Vec3]) -> Result<(), DomainError> {
        let mut rows = vec![0.0; self.nall() * 3];
        for (r, x) in rows.chunks_exact_mut(3).zip(positions) {
            r.copy_from_slice(x);
        }
        DomainExchange::new(self, comm).forward(RowsMut::F64(&mut rows), 3)?;
        for (e, r) in rows.chunks_exact(3).enumerate() {
            let b = [r[0], r[1], r[2]];
            let n = self.shifts[e];
            let s = self.frame.cell.to_frac(b);
            self.coords[e] = self.image(b, n);
            self.base[e] = b;
            self.frac[e] = std::array::from_fn(|a| s[a] + f64::from(n[a]));
        }
        Ok(())
    }

    /// Position of the image of `b` shifted by `n` lattice vectors.
    fn image(&self, b: Vec3, n: [i32; 3]) -> Vec3 {
        if self.frame.has_cell {
            let t = self.frame.cell.shift(n);
            [b[0] + t[0], b[1] + t[1], b[2] + t[2]]
        } else {
            b
        }
    }

    fn truncate_ghosts(&mut self) {
        let n = self.nloc;
        self.coords.truncate(n);
        self.base.truncate(n);
        self.frac.truncate(n);
        self.shifts.truncate(n);
        self.types.truncate(n);
        self.gids.truncate(n);
        self.swaps.clear();
        self.rcut = None;
    }

    /// This rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The processor grid.
    pub fn grid(&self) -> ProcGrid {
        self.grid
    }

    /// Number of atoms in the whole system.
    pub fn natoms(&self) -> usize {
        self.natoms
    }

    /// Number of local (owned) atoms.
    pub fn nloc(&self) -> usize {
        self.nloc
    }

    /// Number of local plus ghost atoms.
    pub fn nall(&self) -> usize {
        self.coords.len()
    }

    /// The cutoff the ghosts were built for, if [`Domain::borders`] ran.
    pub fn rcut(&self) -> Option<f64> {
        self.rcut
    }

    /// Coordinates of local then ghost atoms (Å): owners wrapped into the cell, ghosts their
    /// images `owner + shift · H`.
    pub fn coords(&self) -> &[Vec3] {
        &self.coords
    }

    /// Global id (index in the input system) of every extended atom.
    pub fn gids(&self) -> &[usize] {
        &self.gids
    }

    /// Type (index into the system's `type_names`) of every extended atom.
    pub fn types(&self) -> &[usize] {
        &self.types
    }

    /// Periodic shift of every extended atom relative to its owner's wrapped position.
    pub fn shifts(&self) -> &[[i32; 3]] {
        &self.shifts
    }

    /// The swap plan, in forward order.
    pub fn swaps(&self) -> &[Swap] {
        &self.swaps
    }

    /// Bytes this domain holds on the heap (allocated capacity of its per-atom arrays and
    /// swap lists): what a rank keeps between rebuilds, O(nloc + nghost).
    pub fn heap_bytes(&self) -> usize {
        fn cap<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        cap(&self.coords)
            + cap(&self.base)
            + cap(&self.frac)
            + cap(&self.shifts)
            + cap(&self.gids)
            + cap(&self.types)
            + cap(&self.swaps)
            + self.swaps.iter().map(|s| cap(&s.sendlist)).sum::<usize>()
    }

    /// Fractional bounds `(lo, hi)` of this rank's subdomain.
    pub fn bounds(&self) -> (Vec3, Vec3) {
        (self.blo, self.bhi)
    }
}
