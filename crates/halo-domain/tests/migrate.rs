//! Atom migration and cell refreshes on the threads backend: atoms reach their owners with
//! their payload, migrate + borders equals `Domain::build`, `refresh_cell` equals a fresh
//! build, and inconsistent input fails every rank.

use std::collections::HashMap;
use std::time::Duration;

use halo_comm::{threads, Comm, CommOptions};
use halo_core::{Cell, System, Vec3};
use halo_domain::{Domain, DomainError, LocalAtoms, ProcGrid, Swap};

/// Payload values per atom in these tests.
const WIDTH: usize = 3;

/// splitmix64: a small deterministic generator, so the tests need no dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[a, b)`.
    fn uniform(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Orthorhombic,
    Triclinic,
    Mixed,
    Isolated,
}

const KINDS: [Kind; 4] = [
    Kind::Orthorhombic,
    Kind::Triclinic,
    Kind::Mixed,
    Kind::Isolated,
];

fn cell_of(kind: Kind) -> Option<Cell> {
    match kind {
        Kind::Orthorhombic => Some(Cell::orthorhombic(10.0, 11.0, 12.0).unwrap()),
        Kind::Triclinic => {
            Some(Cell::periodic([[10.0, 0.0, 0.0], [2.0, 9.0, 0.0], [1.5, -1.0, 11.0]]).unwrap())
        }
        Kind::Mixed => Some(
            Cell::new(
                [[10.0, 0.0, 0.0], [1.0, 9.5, 0.0], [-1.0, 0.5, 10.5]],
                [true, false, true],
            )
            .unwrap(),
        ),
        Kind::Isolated => None,
    }
}

/// A system of `n` atoms; along periodic axes some sit outside the cell, so wrapping moves
/// them.
fn raw_system(kind: Kind, n: usize, seed: u64) -> System {
    let mut rng = Rng(seed);
    let cell = cell_of(kind);
    let positions: Vec<Vec3> = (0..n)
        .map(|_| match &cell {
            Some(c) => {
                let pbc = c.pbc();
                let s: Vec3 = std::array::from_fn(|k| {
                    if pbc[k] {
                        rng.uniform(-0.3, 1.3)
                    } else {
                        rng.uniform(0.1, 0.8)
                    }
                });
                c.to_cart(s)
            }
            None => std::array::from_fn(|_| rng.uniform(-7.0, 7.0)),
        })
        .collect();
    let types = (0..n).map(|_| (rng.next_u64() % 2) as usize).collect();
    System::new(
        positions,
        types,
        vec!["O".to_string(), "H".to_string()],
        vec![1.0; n],
        cell,
    )
    .unwrap()
}

/// The positions an integrator holds: wrapped into the cell along periodic axes.
fn md_positions(system: &System) -> Vec<Vec3> {
    match &system.cell {
        Some(c) => system.positions.iter().map(|&x| c.wrap(x)).collect(),
        None => system.positions.clone(),
    }
}

/// The payload of atom `g`, known independently of any rank.
fn payload_for(g: usize) -> [f64; WIDTH] {
    let x = g as f64;
    [x + 0.25, x.sin(), -x * 1e-3]
}

/// How the atoms are spread over the ranks before migrating.
#[derive(Debug, Clone, Copy)]
enum Start {
    RoundRobin,
    AllOn(usize),
}

/// This rank's share of all atoms at `positions` under `start`.
fn share(
    system: &System,
    positions: &[Vec3],
    start: Start,
    nranks: usize,
    rank: usize,
) -> LocalAtoms {
    let mut a = LocalAtoms::new(WIDTH);
    // Reverse order, so that migrate has to sort.
    for g in (0..positions.len()).rev() {
        let mine = match start {
            Start::RoundRobin => g % nranks == rank,
            Start::AllOn(r) => r == rank,
        };
        if mine {
            a.gids.push(g);
            a.types.push(system.types[g]);
            a.positions.push(positions[g]);
            a.payload.extend(payload_for(g));
        }
    }
    a
}

fn opts() -> CommOptions {
    CommOptions::default().with_timeout(Duration::from_secs(20))
}

/// What a rank's domain holds, with coordinates as bits so that equality is exact.
#[derive(Debug, PartialEq)]
struct Snapshot {
    nloc: usize,
    natoms: usize,
    gids: Vec<usize>,
    types: Vec<usize>,
    shifts: Vec<[i32; 3]>,
    coords: Vec<[u64; 3]>,
    swaps: Vec<Swap>,
    bounds: ([u64; 3], [u64; 3]),
}

fn bits(x: Vec3) -> [u64; 3] {
    x.map(f64::to_bits)
}

fn snapshot(d: &Domain) -> Snapshot {
    let (lo, hi) = d.bounds();
    Snapshot {
        nloc: d.nloc(),
        natoms: d.natoms(),
        gids: d.gids().to_vec(),
        types: d.types().to_vec(),
        shifts: d.shifts().to_vec(),
        coords: d.coords().iter().map(|&x| bits(x)).collect(),
        swaps: d.swaps().to_vec(),
        bounds: (bits(lo), bits(hi)),
    }
}

/// Checks that `atoms` is what `domain` owns, in order, with the positions and payload it
/// started with.
fn check_atoms(domain: &Domain, atoms: &LocalAtoms, positions: &[Vec3], system: &System) {
    assert_eq!(atoms.width, WIDTH);
    assert_eq!(atoms.gids, domain.gids()[..domain.nloc()]);
    assert_eq!(atoms.types, domain.types()[..domain.nloc()]);
    assert_eq!(atoms.payload.len(), atoms.len() * WIDTH);
    for (i, &g) in atoms.gids.iter().enumerate() {
        assert_eq!(atoms.types[i], system.types[g], "type of {g}");
        assert_eq!(
            bits(atoms.positions[i]),
            bits(positions[g]),
            "position of {g}"
        );
        assert_eq!(
            bits(domain.coords()[i]),
            bits(positions[g]),
            "coords of {g}"
        );
        let want = payload_for(g).map(f64::to_bits);
        let got: Vec<u64> = atoms.payload_of(i).iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want, "payload of {g}");
    }
}

const GRIDS: [[usize; 3]; 11] = [
    [1, 1, 1],
    [2, 1, 1],
    [1, 2, 1],
    [1, 1, 2],
    [3, 1, 1],
    [1, 3, 1],
    [1, 1, 3],
    [4, 1, 1],
    [2, 2, 1],
    [1, 2, 2],
    [2, 1, 2],
];

const RCUT: f64 = 3.0;

/// migrate + borders on `positions = wrap(system)` against `Domain::build(system)` on every
/// rank; returns the number of ghosts compared.
fn compare_with_build(system: &System, dims: [usize; 3], start: Start) -> usize {
    let grid = ProcGrid::new(dims).unwrap();
    let n = grid.nranks();
    let positions = md_positions(system);
    let per_rank = threads::run(n, &opts(), |comm| {
        let comm: &dyn Comm = &comm;
        let want = Domain::build(comm, system, grid, RCUT).unwrap();
        let mine = share(system, &positions, start, n, comm.rank());
        let (mut got, atoms) =
            Domain::migrate(comm, grid, system.cell.as_ref(), system.len(), mine).unwrap();
        assert_eq!(got.nall(), got.nloc(), "no ghosts before borders");
        check_atoms(&got, &atoms, &positions, system);
        got.borders(comm, RCUT).unwrap();
        (snapshot(&want), snapshot(&got))
    })
    .unwrap();
    let mut ghosts = 0;
    let mut owned = 0;
    for (rank, (want, got)) in per_rank.iter().enumerate() {
        assert_eq!(got, want, "{dims:?} {start:?} rank {rank}");
        ghosts += got.gids.len() - got.nloc;
        owned += got.nloc;
    }
    assert_eq!(owned, system.len());
    ghosts
}

#[test]
fn migrate_then_borders_equals_build() {
    for (i, kind) in KINDS.into_iter().enumerate() {
        let system = raw_system(kind, 90, 11 + i as u64);
        let mut ghosts = 0;
        for dims in GRIDS {
            ghosts += compare_with_build(&system, dims, Start::RoundRobin);
        }
        // Every kind must exercise the swaps, or the comparison says little.
        assert!(ghosts > 0, "{kind:?}: no ghosts at all");
    }
}

#[test]
fn migrate_from_one_rank_equals_build() {
    for (i, kind) in KINDS.into_iter().enumerate() {
        let system = raw_system(kind, 70, 101 + i as u64);
        for dims in [[2, 2, 1], [1, 1, 4], [3, 1, 1], [1, 2, 1]] {
            let n = dims.iter().product::<usize>();
            compare_with_build(&system, dims, Start::AllOn(0));
            compare_with_build(&system, dims, Start::AllOn(n - 1));
        }
    }
}

/// The grid slice holding fractional coordinate `s` when the axis spans `[lo, hi)`.
fn expected_slice(s: f64, lo: f64, hi: f64, p: usize) -> usize {
    let i = ((s - lo) / ((hi - lo) / p as f64)).floor();
    if i <= 0.0 {
        0
    } else {
        (i as usize).min(p - 1)
    }
}

/// Moves every atom by up to `amp` cell lengths (fractional) along periodic axes and
/// `amp / 4` along open ones, then wraps, as an integrator would.
fn displace(cell: Option<&Cell>, positions: &mut [Vec3], rng: &mut Rng, amp: f64) {
    for x in positions.iter_mut() {
        match cell {
            Some(c) => {
                let pbc = c.pbc();
                let mut s = c.to_frac(*x);
                for k in 0..3 {
                    let a = if pbc[k] { amp } else { amp / 4.0 };
                    s[k] += rng.uniform(-a, a);
                }
                *x = c.wrap(c.to_cart(s));
            }
            None => {
                for v in x.iter_mut() {
                    *v += rng.uniform(-3.0 * amp, 3.0 * amp);
                }
            }
        }
    }
}

#[test]
fn displaced_atoms_reach_their_owners_with_their_payload() {
    // Grids change between rounds on four ranks; one- and three-rank runs keep theirs.
    let schedules: [&[[usize; 3]]; 3] = [
        &[[4, 1, 1], [2, 2, 1], [1, 1, 4], [1, 4, 1], [2, 1, 2]],
        &[[1, 1, 1], [1, 1, 1], [1, 1, 1]],
        &[[3, 1, 1], [1, 3, 1], [1, 1, 3], [3, 1, 1]],
    ];
    for (i, kind) in KINDS.into_iter().enumerate() {
        let system = raw_system(kind, 120, 500 + i as u64);
        for (j, schedule) in schedules.iter().enumerate() {
            let nranks: usize = schedule[0].iter().product();
            let mut rng = Rng(7 * i as u64 + j as u64);
            let mut positions = md_positions(&system);
            // Round 0 starts from a round-robin split; later rounds from the last owners.
            let mut held: Vec<LocalAtoms> = (0..nranks)
                .map(|r| share(&system, &positions, Start::RoundRobin, nranks, r))
                .collect();
            for (round, &dims) in schedule.iter().enumerate() {
                if round > 0 {
                    // Up to 1.2 cell lengths: several subdomains, across the boundary.
                    displace(system.cell.as_ref(), &mut positions, &mut rng, 1.2);
                    for a in held.iter_mut() {
                        for (x, &g) in a.positions.iter_mut().zip(&a.gids) {
                            *x = positions[g];
                        }
                    }
                }
                held = migrate_round(&system, &positions, dims, held, kind);
            }
        }
    }
}

/// One migration of `held` onto the grid `dims`, checked independently; returns the new
/// owners' atoms.
fn migrate_round(
    system: &System,
    positions: &[Vec3],
    dims: [usize; 3],
    held: Vec<LocalAtoms>,
    kind: Kind,
) -> Vec<LocalAtoms> {
    let grid = ProcGrid::new(dims).unwrap();
    let n = grid.nranks();
    let cell = system.cell;
    let frac_of = |x: Vec3| cell.as_ref().map_or(x, |c| c.to_frac(x));
    let pbc = cell.as_ref().map_or([false; 3], |c| c.pbc());
    let all: Vec<Vec3> = positions.iter().map(|&x| frac_of(x)).collect();
    let lo: Vec3 = std::array::from_fn(|k| {
        if pbc[k] {
            0.0
        } else {
            all.iter().map(|s| s[k]).fold(f64::INFINITY, f64::min)
        }
    });
    let hi: Vec3 = std::array::from_fn(|k| {
        if pbc[k] {
            1.0
        } else {
            all.iter().map(|s| s[k]).fold(f64::NEG_INFINITY, f64::max)
        }
    });
    let slots: Vec<std::sync::Mutex<Option<LocalAtoms>>> = held
        .into_iter()
        .map(|a| std::sync::Mutex::new(Some(a)))
        .collect();
    let out = threads::run(n, &opts(), |comm| {
        let comm: &dyn Comm = &comm;
        let mine = slots[comm.rank()].lock().unwrap().take().unwrap();
        let (d, atoms) = Domain::migrate(comm, grid, cell.as_ref(), system.len(), mine).unwrap();
        check_atoms(&d, &atoms, positions, system);
        assert!(atoms.gids.windows(2).all(|w| w[0] < w[1]), "gid order");
        let loc = grid.loc(comm.rank());
        for &x in &atoms.positions {
            let s = frac_of(x);
            for k in 0..3 {
                let t = expected_slice(s[k], lo[k], hi[k], dims[k]);
                assert_eq!(
                    t, loc[k],
                    "{kind:?} {dims:?}: atom at {s:?} on the wrong rank"
                );
            }
        }
        atoms
    })
    .unwrap();
    let mut seen = vec![0usize; system.len()];
    for a in &out {
        for &g in &a.gids {
            seen[g] += 1;
        }
    }
    assert!(seen.iter().all(|&c| c == 1), "{kind:?} {dims:?}: {seen:?}");
    out
}

/// The system with its cell scaled by `f` along each axis and its atoms following the cell.
fn scaled(system: &System, f: Vec3) -> System {
    let c = system.cell.as_ref().unwrap();
    let h = c.matrix();
    let h2: [Vec3; 3] = std::array::from_fn(|a| h[a].map(|v| v * f[a]));
    let c2 = Cell::new(h2, c.pbc()).unwrap();
    let mut s2 = system.clone();
    s2.positions = system
        .positions
        .iter()
        .map(|&x| c2.to_cart(c.to_frac(x)))
        .collect();
    s2.cell = Some(c2);
    s2
}

#[test]
fn refresh_cell_matches_a_fresh_build() {
    for (i, kind) in [Kind::Orthorhombic, Kind::Triclinic, Kind::Mixed]
        .into_iter()
        .enumerate()
    {
        let system = raw_system(kind, 90, 900 + i as u64);
        for (f, superset) in [([1.03, 1.02, 1.04], true), ([0.98, 0.99, 0.97], false)] {
            let next = scaled(&system, f);
            let new_cell = next.cell.unwrap();
            let (old_pos, new_pos) = (md_positions(&system), md_positions(&next));
            for dims in [[1, 1, 1], [2, 1, 1], [2, 2, 1], [1, 1, 3]] {
                let grid = ProcGrid::new(dims).unwrap();
                let n = grid.nranks();
                let per_rank = threads::run(n, &opts(), |comm| {
                    let comm: &dyn Comm = &comm;
                    let mine = share(&system, &old_pos, Start::RoundRobin, n, comm.rank());
                    let (mut d, atoms) =
                        Domain::migrate(comm, grid, system.cell.as_ref(), system.len(), mine)
                            .unwrap();
                    d.borders(comm, RCUT).unwrap();
                    let moved: Vec<Vec3> = atoms.gids.iter().map(|&g| new_pos[g]).collect();
                    d.refresh_cell(comm, &moved, &new_cell).unwrap();
                    let fresh = Domain::build(comm, &next, grid, RCUT).unwrap();
                    (snapshot(&d), snapshot(&fresh))
                })
                .unwrap();
                let mut common = 0;
                for (rank, (got, want)) in per_rank.iter().enumerate() {
                    let ctx = format!("{kind:?} {f:?} {dims:?} rank {rank}");
                    assert_eq!(
                        got.gids[..got.nloc],
                        want.gids[..want.nloc],
                        "{ctx}: owners"
                    );
                    // The slices stay; along an open axis the fresh bounding box of the
                    // rescaled atoms may differ in the last bits.
                    let pbc = new_cell.pbc();
                    for k in 0..3 {
                        for (a, b) in [(got.bounds.0, want.bounds.0), (got.bounds.1, want.bounds.1)]
                        {
                            let (a, b) = (f64::from_bits(a[k]), f64::from_bits(b[k]));
                            if pbc[k] {
                                assert_eq!(a, b, "{ctx}: bounds along {k}");
                            } else {
                                assert!((a - b).abs() < 1e-12, "{ctx}: bounds along {k}");
                            }
                        }
                    }
                    // Every refreshed row is its owner's new position plus shift · H_new.
                    for (e, (&g, &s)) in got.gids.iter().zip(&got.shifts).enumerate() {
                        let t = new_cell.shift(s);
                        let x = new_pos[g];
                        let want_x = [x[0] + t[0], x[1] + t[1], x[2] + t[2]];
                        assert_eq!(got.coords[e], bits(want_x), "{ctx}: row {e}");
                    }
                    let mine: HashMap<(usize, [i32; 3]), [u64; 3]> = got
                        .gids
                        .iter()
                        .zip(&got.shifts)
                        .zip(&got.coords)
                        .map(|((&g, &s), &c)| ((g, s), c))
                        .collect();
                    for ((&g, &s), &c) in want.gids.iter().zip(&want.shifts).zip(&want.coords) {
                        match mine.get(&(g, s)) {
                            Some(&have) => {
                                assert_eq!(have, c, "{ctx}: image ({g}, {s:?})");
                                common += 1;
                            }
                            None => {
                                assert!(!superset, "{ctx}: a grown cell lost image ({g}, {s:?})")
                            }
                        }
                    }
                }
                assert!(
                    common > system.len(),
                    "{kind:?} {dims:?}: too few images compared"
                );
            }
        }
    }
}

#[test]
fn refresh_cell_rejects_other_periodicity_and_isolated_systems() {
    let system = raw_system(Kind::Triclinic, 40, 3);
    let isolated = raw_system(Kind::Isolated, 40, 4);
    let grid = ProcGrid::new([2, 1, 1]).unwrap();
    let errors = threads::run(2, &opts(), |comm| {
        let comm: &dyn Comm = &comm;
        let mut d = Domain::build(comm, &system, grid, RCUT).unwrap();
        let pos = d.coords()[..d.nloc()].to_vec();
        let c = system.cell.unwrap();
        let slab = c.with_pbc([true, true, false]);
        let e1 = d.refresh_cell(comm, &pos, &slab).unwrap_err();
        let mut di = Domain::build(comm, &isolated, grid, RCUT).unwrap();
        let posi = di.coords()[..di.nloc()].to_vec();
        let e2 = di.refresh_cell(comm, &posi, &c).unwrap_err();
        // A rejected call leaves the domain usable.
        d.refresh_cell(comm, &pos, &c).unwrap();
        (e1.to_string(), e2.to_string())
    })
    .unwrap();
    for (e1, e2) in errors {
        assert!(e1.contains("periodicity"), "{e1}");
        assert!(e2.contains("isolated"), "{e2}");
    }
}

/// Runs `migrate` on four ranks of a 2 × 2 grid with `edit` applied to each rank's share of
/// a round-robin split and `natoms` of `natoms_for(rank)`; returns every rank's result.
fn migrate_edited(
    edit: impl Fn(usize, &mut LocalAtoms) + Sync,
    natoms_for: impl Fn(usize) -> usize + Sync,
) -> Vec<Result<(Domain, LocalAtoms), DomainError>> {
    let system = raw_system(Kind::Orthorhombic, 40, 77);
    let positions = md_positions(&system);
    let grid = ProcGrid::new([2, 2, 1]).unwrap();
    threads::run(4, &opts(), |comm| {
        let comm: &dyn Comm = &comm;
        let mut mine = share(&system, &positions, Start::RoundRobin, 4, comm.rank());
        edit(comm.rank(), &mut mine);
        Domain::migrate(
            comm,
            grid,
            system.cell.as_ref(),
            natoms_for(comm.rank()),
            mine,
        )
    })
    .unwrap()
}

fn expect_lost(
    results: &[Result<(Domain, LocalAtoms), DomainError>],
    found_want: usize,
    what: &str,
) {
    assert_eq!(results.len(), 4);
    for (rank, r) in results.iter().enumerate() {
        match r {
            Err(e @ DomainError::Lost { found, detail, .. }) => {
                assert_eq!(*found, found_want, "rank {rank}: {e}");
                assert!(detail.contains(what), "rank {rank}: {e}");
                assert!(e.to_string().contains("atoms lost across ranks"), "{e}");
            }
            other => panic!(
                "rank {rank}: expected Lost ({what}), got {:?}",
                other.as_ref().err()
            ),
        }
    }
}

#[test]
fn inconsistent_atoms_fail_every_rank_with_lost() {
    // natoms too large and too small.
    expect_lost(&migrate_edited(|_, _| {}, |_| 41), 40, "40 atoms for 41");
    expect_lost(&migrate_edited(|_, _| {}, |_| 39), 40, "not below 39");
    // A dropped atom.
    expect_lost(
        &migrate_edited(
            |rank, a| {
                if rank == 2 {
                    a.gids.pop();
                    a.types.pop();
                    a.positions.pop();
                    a.payload.truncate(a.payload.len() - WIDTH);
                }
            },
            |_| 40,
        ),
        39,
        "39 atoms for 40",
    );
    // Rank 1's first atom relabelled as rank 0's first atom, at its own position: the
    // count is right, one id twice on two ranks (unless both land together) and one
    // missing.
    expect_lost(
        &migrate_edited(
            |rank, a| {
                if rank == 1 {
                    // Round robin on 4 ranks: rank 0 holds 36, rank 1 holds 37.
                    let i = a.gids.iter().position(|&g| g == 37).unwrap();
                    a.gids[i] = 36;
                }
            },
            |_| 40,
        ),
        40,
        "",
    );
    // The same id twice at one position lands twice on one rank.
    expect_lost(
        &migrate_edited(
            |rank, a| {
                if rank == 3 {
                    let (g, t, x) = (a.gids[0], a.types[0], a.positions[0]);
                    a.gids[1] = g;
                    a.types[1] = t;
                    a.positions[1] = x;
                }
            },
            |_| 40,
        ),
        40,
        "twice on one rank",
    );
}

#[test]
fn malformed_or_disagreeing_input_fails_every_rank() {
    let results = migrate_edited(
        |rank, a| {
            if rank == 1 {
                a.payload.push(0.0);
            }
        },
        |_| 40,
    );
    for (rank, r) in results.iter().enumerate() {
        let e = r
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("rank {rank} succeeded"));
        assert!(matches!(e, DomainError::Input(_)), "rank {rank}: {e}");
        assert!(e.to_string().contains("rank 1"), "rank {rank}: {e}");
    }
    let results = migrate_edited(
        |rank, a| {
            if rank == 0 {
                a.positions[0][2] = f64::NAN;
            }
        },
        |_| 40,
    );
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(DomainError::Input(_)))));
    let results = migrate_edited(|_, _| {}, |rank| 40 + usize::from(rank == 3));
    for r in &results {
        let e = r.as_ref().expect_err("disagreement must fail");
        assert!(e.to_string().contains("disagree on the natoms"), "{e}");
    }
}

#[test]
fn migrating_again_changes_nothing() {
    let system = raw_system(Kind::Triclinic, 80, 31);
    let positions = md_positions(&system);
    let grid = ProcGrid::new([2, 2, 1]).unwrap();
    threads::run(4, &opts(), |comm| {
        let comm: &dyn Comm = &comm;
        let mine = share(&system, &positions, Start::AllOn(2), 4, comm.rank());
        let (d1, a1) =
            Domain::migrate(comm, grid, system.cell.as_ref(), system.len(), mine).unwrap();
        let (d2, a2) =
            Domain::migrate(comm, grid, system.cell.as_ref(), system.len(), a1.clone()).unwrap();
        assert_eq!(a1, a2);
        assert_eq!(snapshot(&d1), snapshot(&d2));
    })
    .unwrap();
}

#[test]
fn an_empty_system_migrates_to_empty_domains() {
    let grid = ProcGrid::new([2, 1, 1]).unwrap();
    let cell = cell_of(Kind::Mixed).unwrap();
    threads::run(2, &opts(), |comm| {
        let comm: &dyn Comm = &comm;
        let (mut d, a) = Domain::migrate(comm, grid, Some(&cell), 0, LocalAtoms::new(2)).unwrap();
        assert!(a.is_empty());
        assert_eq!(d.nloc(), 0);
        d.borders(comm, RCUT).unwrap();
        assert_eq!(d.nall(), 0);
    })
    .unwrap();
}

/// Atoms on the cell faces and on subdomain faces: wrapping leaves some fractional
/// coordinates a rounding error outside `[0, 1)`, which `build` clamps into the edge slices;
/// `migrate` must place them identically.
#[test]
fn atoms_on_faces_are_placed_as_build_places_them() {
    let edges = [
        0.0,
        1e-17,
        -1e-17,
        -1e-16,
        1.0 - 1e-16,
        1.0,
        1.0 + 1e-16,
        0.5,
        1.0 / 3.0,
        2.0 / 3.0,
        0.25,
        0.75,
    ];
    let mut total_outside = 0;
    for kind in [Kind::Orthorhombic, Kind::Triclinic, Kind::Mixed] {
        let mut rng = Rng(4242);
        let c = cell_of(kind).unwrap();
        let pbc = c.pbc();
        let positions: Vec<Vec3> = (0..300)
            .map(|_| {
                let s: Vec3 = std::array::from_fn(|k| {
                    if pbc[k] {
                        edges[(rng.next_u64() % edges.len() as u64) as usize]
                    } else {
                        rng.uniform(0.2, 0.7)
                    }
                });
                c.to_cart(s)
            })
            .collect();
        let n = positions.len();
        let system = System::new(
            positions,
            vec![0; n],
            vec!["O".to_string()],
            vec![1.0; n],
            Some(c),
        )
        .unwrap();
        let outside = md_positions(&system)
            .iter()
            .filter(|&&x| {
                let s = c.to_frac(x);
                (0..3).any(|k| pbc[k] && !(0.0..1.0).contains(&s[k]))
            })
            .count();
        total_outside += outside;
        for dims in [[2, 1, 1], [3, 1, 1], [4, 1, 1], [1, 2, 2], [1, 1, 3]] {
            compare_with_build(&system, dims, Start::RoundRobin);
        }
    }
    // The triclinic cells must produce such atoms, or this test checks nothing special.
    assert!(total_outside > 0, "no wrapped atom rounds outside the cell");
}

/// `Cell::wrap` is not idempotent to the bit (its round trip through fractional coordinates
/// rounds), so `build` on already wrapped positions re-wraps them: the owners and ghost sets
/// still agree with migrate, and coordinates to rounding.
#[test]
fn build_on_wrapped_positions_agrees_to_rounding() {
    for (i, kind) in [Kind::Orthorhombic, Kind::Triclinic, Kind::Mixed]
        .into_iter()
        .enumerate()
    {
        let raw = raw_system(kind, 90, 300 + i as u64);
        let positions = md_positions(&raw);
        let mut wrapped = raw.clone();
        wrapped.positions = positions.clone();
        let c = raw.cell.unwrap();
        let rewrapped = positions
            .iter()
            .filter(|&&x| bits(c.wrap(x)) != bits(x))
            .count();
        assert!(
            rewrapped > 0,
            "{kind:?}: wrap happens to be idempotent here"
        );
        for dims in [[1, 1, 1], [2, 1, 1], [2, 2, 1], [1, 1, 3]] {
            let grid = ProcGrid::new(dims).unwrap();
            let n = grid.nranks();
            let per_rank = threads::run(n, &opts(), |comm| {
                let comm: &dyn Comm = &comm;
                let want = Domain::build(comm, &wrapped, grid, RCUT).unwrap();
                let mine = share(&raw, &positions, Start::RoundRobin, n, comm.rank());
                let (mut got, _) = Domain::migrate(comm, grid, Some(&c), raw.len(), mine).unwrap();
                got.borders(comm, RCUT).unwrap();
                (snapshot(&want), snapshot(&got))
            })
            .unwrap();
            for (rank, (want, got)) in per_rank.iter().enumerate() {
                let ctx = format!("{kind:?} {dims:?} rank {rank}");
                assert_eq!(got.nloc, want.nloc, "{ctx}");
                assert_eq!(got.gids, want.gids, "{ctx}");
                assert_eq!(got.shifts, want.shifts, "{ctx}");
                for (a, b) in got.coords.iter().zip(&want.coords) {
                    for k in 0..3 {
                        let d = f64::from_bits(a[k]) - f64::from_bits(b[k]);
                        assert!(d.abs() < 1e-12, "{ctx}: {d}");
                    }
                }
            }
        }
    }
}

/// An atom the caller left outside the cell is owned by the rank of its wrapped coordinate
/// and keeps its position bit for bit.
#[test]
fn unwrapped_atoms_are_placed_by_their_wrapped_coordinate() {
    let raw = raw_system(Kind::Triclinic, 60, 17);
    let c = raw.cell.unwrap();
    let outside = raw
        .positions
        .iter()
        .filter(|&&x| c.to_frac(x).iter().any(|s| !(0.0..1.0).contains(s)))
        .count();
    assert!(outside > 10, "only {outside} atoms outside the cell");
    let grid = ProcGrid::new([2, 2, 1]).unwrap();
    let per_rank = threads::run(4, &opts(), |comm| {
        let comm: &dyn Comm = &comm;
        let want = Domain::decompose(&raw, grid, comm.rank()).unwrap();
        let mine = share(&raw, &raw.positions, Start::AllOn(1), 4, comm.rank());
        let (_, got) = Domain::migrate(comm, grid, Some(&c), raw.len(), mine).unwrap();
        (want.gids().to_vec(), got)
    })
    .unwrap();
    for (rank, (want, got)) in per_rank.iter().enumerate() {
        assert_eq!(&got.gids, want, "rank {rank}: owners");
        for (i, &g) in got.gids.iter().enumerate() {
            assert_eq!(
                bits(got.positions[i]),
                bits(raw.positions[g]),
                "rank {rank}: {g}"
            );
        }
    }
}
