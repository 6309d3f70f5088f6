//! Ghost sets against halo-nlist's single-rank `extend`, and forward/reverse exchange checks,
//! on the threads backend.

mod common;

use std::collections::HashMap;

use halo_comm::{threads, Comm, CommExt, CommOptions, Op};
use halo_core::{Exchange, RowsMut, System, Vec3};
use halo_domain::{Domain, DomainExchange, ProcGrid};

/// One rank's extended system.
struct RankGhosts {
    nloc: usize,
    gids: Vec<usize>,
    shifts: Vec<[i32; 3]>,
    coords: Vec<Vec3>,
}

fn wrapped(system: &System) -> Vec<Vec3> {
    match &system.cell {
        Some(c) => system.positions.iter().map(|&x| c.wrap(x)).collect(),
        None => system.positions.clone(),
    }
}

fn domains(system: &System, dims: [usize; 3], rcut: f64) -> Vec<RankGhosts> {
    let grid = ProcGrid::new(dims).unwrap();
    threads::run(grid.nranks(), &CommOptions::default(), |comm| {
        let d = Domain::build(&comm, system, grid, rcut).unwrap();
        RankGhosts {
            nloc: d.nloc(),
            gids: d.gids().to_vec(),
            shifts: d.shifts().to_vec(),
            coords: d.coords().to_vec(),
        }
    })
    .unwrap()
}

fn dist2(a: Vec3, b: Vec3) -> f64 {
    (0..3).map(|k| (a[k] - b[k]).powi(2)).sum()
}

/// Every rank's atoms are a partition plus distinct images, placed exactly at
/// `owner + shift · H`, and include every image within `rcut` of a local atom.
fn check_ghosts(system: &System, dims: [usize; 3], rcut: f64) -> usize {
    let ranks = domains(system, dims, rcut);
    let n = system.len();
    let mut owned = vec![0usize; n];
    for r in &ranks {
        for &g in &r.gids[..r.nloc] {
            owned[g] += 1;
        }
        assert!(
            r.gids[..r.nloc].windows(2).all(|w| w[0] < w[1]),
            "local order"
        );
    }
    assert!(
        owned.iter().all(|&c| c == 1),
        "{dims:?}: ownership {owned:?}"
    );
    let pos = wrapped(system);
    let ext = halo_nlist::extend(&pos, system.cell.as_ref(), rcut).unwrap();
    let mut ghosts = 0;
    for (rank, r) in ranks.iter().enumerate() {
        let mut set: HashMap<(usize, [i32; 3]), usize> = HashMap::new();
        for (e, (&g, &s)) in r.gids.iter().zip(&r.shifts).enumerate() {
            assert!(
                set.insert((g, s), e).is_none(),
                "{dims:?} rank {rank}: image ({g}, {s:?}) twice"
            );
            let want = match &system.cell {
                Some(c) => {
                    let t = c.shift(s);
                    [pos[g][0] + t[0], pos[g][1] + t[1], pos[g][2] + t[2]]
                }
                None => pos[g],
            };
            assert_eq!(
                r.coords[e], want,
                "{dims:?} rank {rank}: ghost {e} misplaced"
            );
        }
        ghosts += r.gids.len() - r.nloc;
        for e in 0..ext.nall() {
            let key = (ext.mapping[e], ext.shifts[e]);
            if let Some(&mine) = set.get(&key) {
                assert_eq!(r.coords[mine], ext.coords[e], "bitwise equal to extend");
                continue;
            }
            let needed = r.coords[..r.nloc]
                .iter()
                .any(|&x| dist2(x, ext.coords[e]).sqrt() <= rcut);
            assert!(
                !needed,
                "{dims:?} rank {rank}: missing image {key:?} within {rcut} Å of a local atom"
            );
        }
    }
    ghosts
}

fn cubic() -> System {
    common::supercell(&common::structure("dpa3_base", "cubic"), [1, 1, 1])
}

#[test]
fn ghost_sets_cover_extend_on_every_grid() {
    let grids = [
        [1, 1, 1],
        [2, 1, 1],
        [3, 1, 1],
        [4, 1, 1],
        [1, 1, 4],
        [2, 2, 1],
        [2, 2, 2],
        [1, 3, 2],
    ];
    for name in ["cubic", "triclinic", "slab"] {
        let s = common::structure("dpa3_base", name);
        for dims in grids {
            let ng = check_ghosts(&s, dims, 5.0);
            assert!(ng > 0, "{name} {dims:?}: no ghosts at all");
        }
    }
    // The 2×2×2 supercell: subdomains as thick as the cutoff or thinner.
    let big = common::supercell(&common::structure("dpa3_base", "triclinic"), [2, 2, 2]);
    for dims in [[2, 1, 1], [4, 1, 1], [2, 2, 2], [3, 1, 1]] {
        check_ghosts(&big, dims, 5.0);
    }
}

#[test]
fn thin_cells_and_open_boundaries() {
    // 2.45 Å thick along a, split in two: 1.2 Å subdomains need five swap levels per side.
    let thin = common::structure("se_a_two_side", "smallcell");
    for dims in [[1, 1, 1], [2, 1, 1], [2, 1, 2]] {
        check_ghosts(&thin, dims, 4.5);
    }
    // An isolated cluster: no cell, ghosts are only other ranks' atoms.
    let cluster = common::structure("dpa3_base", "cluster");
    assert_eq!(check_ghosts(&cluster, [1, 1, 1], 5.0), 0);
    for dims in [[2, 1, 1], [3, 1, 1], [2, 2, 2]] {
        check_ghosts(&cluster, dims, 5.0);
    }
}

#[test]
fn empty_subdomains_are_fine() {
    let s = cubic();
    let cell = s.cell.unwrap();
    let keep: Vec<usize> = (0..s.len())
        .filter(|&i| halo_core::cell::wrap_unit(cell.to_frac(s.positions[i])[0]) < 0.45)
        .collect();
    assert!(keep.len() > 4 && keep.len() < s.len());
    let half = System::new(
        keep.iter().map(|&i| s.positions[i]).collect(),
        keep.iter().map(|&i| s.types[i]).collect(),
        s.type_names.clone(),
        vec![1.0; keep.len()],
        Some(cell),
    )
    .unwrap();
    let ranks = domains(&half, [4, 1, 1], 5.0);
    assert!(ranks.iter().any(|r| r.nloc == 0), "some subdomain is empty");
    check_ghosts(&half, [4, 1, 1], 5.0);
}

#[test]
fn auto_grid_minimises_surface() {
    let s = cubic();
    assert_eq!(ProcGrid::auto(&s, 8).unwrap().dims(), [2, 2, 2]);
    assert_eq!(ProcGrid::auto(&s, 2).unwrap().dims(), [1, 1, 2]);
    assert_eq!(ProcGrid::auto(&s, 1).unwrap().dims(), [1, 1, 1]);
    // A long box is cut across its length.
    let long = common::supercell(&s, [4, 1, 1]);
    assert_eq!(ProcGrid::auto(&long, 4).unwrap().dims(), [4, 1, 1]);
    // The slab's open axis is its thin bounding box: never split when others can be.
    let slab = common::structure("dpa3_base", "slab");
    assert_eq!(ProcGrid::auto(&slab, 4).unwrap().dims()[2], 1);
    assert!(ProcGrid::auto(&s, 0).is_err());
}

/// A deterministic pseudo-random value in [-1, 1) from a few integers.
fn noise(a: usize, b: usize, c: usize) -> f64 {
    let mut h = (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (b as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (c as u64).wrapping_mul(0x1656_67B1_9E37_79F9);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 32;
    (h >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// Forward fills every ghost with its owner's row; reverse sums every image into its owner
/// and zeroes ghosts; forward and reverse are adjoint (`⟨F x, y⟩ = ⟨x, R y⟩`).
fn check_exchange(system: &System, dims: [usize; 3], rcut: f64) {
    let grid = ProcGrid::new(dims).unwrap();
    let n = system.len();
    let results = threads::run(grid.nranks(), &CommOptions::default(), |comm| {
        let d = Domain::build(&comm, system, grid, rcut).unwrap();
        let (nloc, nall) = (d.nloc(), d.nall());
        let gids = d.gids();
        let mut ex = DomainExchange::new(&d, &comm);
        assert_eq!((ex.nloc(), ex.nall()), (nloc, nall));

        // Forward, f64, width 3; ghosts start as NaN so an unfilled one shows.
        let row = |g: usize, c: usize| g as f64 * 10.0 + c as f64 + 0.25;
        let mut x: Vec<f64> = (0..nall * 3)
            .map(|k| {
                if k < nloc * 3 {
                    row(gids[k / 3], k % 3)
                } else {
                    f64::NAN
                }
            })
            .collect();
        ex.forward(RowsMut::F64(&mut x), 3).unwrap();
        for (k, v) in x.iter().enumerate() {
            assert_eq!(*v, row(gids[k / 3], k % 3), "f64 forward row {}", k / 3);
        }
        // Forward, f32, width 5, twice (buffers reused).
        for pass in 0..2 {
            let rowf = |g: usize, c: usize| (g * 5 + c + pass) as f32;
            let mut y: Vec<f32> = (0..nall * 5)
                .map(|k| {
                    if k < nloc * 5 {
                        rowf(gids[k / 5], k % 5)
                    } else {
                        -1.0
                    }
                })
                .collect();
            ex.forward(RowsMut::F32(&mut y), 5).unwrap();
            for (k, v) in y.iter().enumerate() {
                assert_eq!(*v, rowf(gids[k / 5], k % 5), "f32 forward row {}", k / 5);
            }
        }
        // Reverse of ones counts the images of every owner.
        let mut ones = vec![1.0f32; nall * 2];
        ex.reverse(RowsMut::F32(&mut ones), 2).unwrap();
        assert!(ones[nloc * 2..].iter().all(|&v| v == 0.0), "ghosts zeroed");
        let counts: Vec<(usize, f32)> = (0..nloc).map(|i| (gids[i], ones[2 * i])).collect();
        assert!((0..nloc).all(|i| ones[2 * i] == ones[2 * i + 1]));

        // Adjointness with pseudo-random rows, width 4.
        let w = 4;
        let xl: Vec<f64> = (0..nall * w)
            .map(|k| {
                if k < nloc * w {
                    noise(gids[k / w], k % w, 1)
                } else {
                    0.0
                }
            })
            .collect();
        let yv: Vec<f64> = (0..nall * w).map(|k| noise(comm.rank(), k, 2)).collect();
        let mut fx = xl.clone();
        ex.forward(RowsMut::F64(&mut fx), w).unwrap();
        let mut ry = yv.clone();
        ex.reverse(RowsMut::F64(&mut ry), w).unwrap();
        let mut dots = [
            fx.iter().zip(&yv).map(|(a, b)| a * b).sum::<f64>(),
            xl[..nloc * w]
                .iter()
                .zip(&ry[..nloc * w])
                .map(|(a, b)| a * b)
                .sum::<f64>(),
        ];
        comm.allreduce_f64(&mut dots, Op::Sum).unwrap();
        assert!(
            (dots[0] - dots[1]).abs() <= 1e-10 * dots[0].abs().max(1.0),
            "<Fx,y> = {} but <x,Ry> = {}",
            dots[0],
            dots[1]
        );
        // Wrong lengths are errors, not panics.
        assert!(ex.forward(RowsMut::F64(&mut [0.0; 1]), 3).is_err() || nall * 3 == 1);
        (counts, gids[nloc..].to_vec())
    })
    .unwrap();
    let mut images = vec![0usize; n];
    for (_, ghosts) in &results {
        for &g in ghosts {
            images[g] += 1;
        }
    }
    for (counts, _) in &results {
        for &(g, c) in counts {
            assert_eq!(c as usize, 1 + images[g], "{dims:?}: atom {g}");
        }
    }
}

#[test]
fn exchange_forward_reverse_adjoint() {
    let s = common::structure("dpa3_base", "triclinic");
    for dims in [[1, 1, 1], [2, 1, 1], [3, 1, 1], [1, 1, 4], [2, 2, 2]] {
        check_exchange(&s, dims, 5.0);
    }
    check_exchange(
        &common::structure("se_a_two_side", "smallcell"),
        [2, 1, 1],
        4.5,
    );
    check_exchange(&common::structure("dpa3_base", "slab"), [2, 1, 2], 5.0);
    check_exchange(&common::structure("dpa3_base", "cluster"), [2, 2, 1], 5.0);
}

#[test]
fn refresh_moves_ghosts_with_their_owners() {
    let s = common::structure("dpa3_base", "triclinic");
    let cell = s.cell.unwrap();
    let grid = ProcGrid::new([2, 1, 2]).unwrap();
    let moved: Vec<Vec3> = wrapped(&s)
        .iter()
        .enumerate()
        .map(|(i, x)| std::array::from_fn(|k| x[k] + 0.05 * noise(i, k, 3)))
        .collect();
    threads::run(grid.nranks(), &CommOptions::default(), |comm| {
        let mut d = Domain::build(&comm, &s, grid, 5.0).unwrap();
        let local: Vec<Vec3> = d.gids()[..d.nloc()].iter().map(|&g| moved[g]).collect();
        d.refresh(&comm, &local).unwrap();
        for (e, (&g, &n)) in d.gids().iter().zip(d.shifts()).enumerate() {
            let t = cell.shift(n);
            let want = [moved[g][0] + t[0], moved[g][1] + t[1], moved[g][2] + t[2]];
            assert_eq!(d.coords()[e], want, "atom {e} after refresh");
        }
        assert!(
            d.refresh(&comm, &local[..local.len().saturating_sub(1)])
                .is_err()
                || local.is_empty()
        );
    })
    .unwrap();
}

#[test]
fn invalid_inputs_are_errors() {
    let s = cubic();
    let grid = ProcGrid::new([2, 1, 1]).unwrap();
    assert!(Domain::decompose(&s, grid, 2).is_err());
    threads::run(3, &CommOptions::default(), |comm| {
        // A communicator of 3 ranks cannot run a grid of 2.
        let mut d = Domain::decompose(&s, grid, comm.rank().min(1)).unwrap();
        assert!(d.borders(&comm, 5.0).is_err());
    })
    .unwrap();
    threads::run(2, &CommOptions::default(), |comm| {
        let mut d = Domain::decompose(&s, grid, comm.rank()).unwrap();
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(d.borders(&comm, bad).is_err(), "cutoff {bad}");
        }
        // A cutoff of thousands of periods is refused, not attempted.
        let err = d.borders(&comm, 1e6).unwrap_err().to_string();
        assert!(err.contains("swap levels"), "{err}");
    })
    .unwrap();
}

#[test]
fn evaluate_folds_gathers_and_reduces() {
    use halo_domain::{evaluate, evaluate_with, RankOutput};
    let s = common::structure("dpa3_base", "triclinic");
    let n = s.len();
    let grid = ProcGrid::new([2, 2, 1]).unwrap();
    let outs = threads::run(grid.nranks(), &CommOptions::default(), |comm| {
        let d = Domain::build(&comm, &s, grid, 5.0).unwrap();
        // A stand-in model: each local atom has energy = its global id, every extended row a
        // unit force along x and a virial row of ones, so folding counts images.
        let fake = |inp: &halo_domain::RankInput<'_>, _ex: &mut DomainExchange<'_>| {
            Ok::<_, std::io::Error>(RankOutput {
                energy: inp.gids[..inp.nloc].iter().map(|&g| g as f64).sum(),
                atom_energy: inp.gids[..inp.nloc].iter().map(|&g| g as f64).collect(),
                force: vec![[1.0, 0.0, 0.0]; inp.coords.len()],
                virial: [1.0; 9],
                atom_virial: vec![[1.0; 9]; inp.coords.len()],
            })
        };
        let a = evaluate(&comm, &d, fake).unwrap();
        let mut ex = DomainExchange::new(&d, &comm);
        let b = evaluate_with(&mut ex, &d, fake).unwrap();
        let c = evaluate_with(&mut ex, &d, fake).unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        // An exchange of another domain is refused before any communication.
        let other = Domain::build(&comm, &s, grid, 4.0).unwrap();
        assert!(evaluate_with(&mut ex, &other, fake).is_err());
        let ghosts = d.gids()[d.nloc()..].to_vec();
        (a, ghosts)
    })
    .unwrap();
    let mut images = vec![0usize; n];
    for (_, g) in &outs {
        for &i in g {
            images[i] += 1;
        }
    }
    let (first, _) = &outs[0];
    assert_eq!(first.energy, (0..n).map(|g| g as f64).sum::<f64>());
    assert_eq!(first.virial, [4.0; 9]);
    let atoms = first.atoms.as_ref().expect("rank 0 gathers");
    for (g, &m) in images.iter().enumerate() {
        assert_eq!(atoms.atom_energy[g], g as f64);
        assert_eq!(atoms.force[g], [1.0 + m as f64, 0.0, 0.0]);
        assert_eq!(atoms.atom_virial[g], [1.0 + m as f64; 9]);
    }
    assert!(outs[1..].iter().all(|(o, _)| o.atoms.is_none()));
}
