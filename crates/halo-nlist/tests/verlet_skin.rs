//! Along random trajectories (fixed and deforming cells) the Verlet list, rebuilt only when
//! the criterion asks, gives exactly the pairs and order of a fresh build every step.

mod common;

use common::jittered_lattice;
use halo_core::Cell;
use halo_nlist::{extend, Extended, NeighborList, Verlet};

type Row = Vec<(usize, [i32; 3])>;

fn rows(ext: &Extended, nl: &NeighborList) -> Vec<Row> {
    nl.iter()
        .map(|(_, r)| {
            r.iter()
                .map(|&e| (ext.mapping[e as usize], ext.shifts[e as usize]))
                .collect()
        })
        .collect()
}

fn fresh_rows(pos: &[[f64; 3]], cell: Option<&Cell>, rcut: f64) -> Vec<Row> {
    let ext = extend(pos, cell, rcut).unwrap();
    let nl = NeighborList::build(&ext.coords, ext.nloc, rcut).unwrap();
    rows(&ext, &nl)
}

struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

fn run(deform: bool, seed: u64) {
    let (rcut, skin, steps) = (3.0, 0.6, 120);
    let (mut pos, cell0) = jittered_lattice(5, 2.0, seed);
    let mut h = *cell0.matrix();
    let mut rng = Rng(seed);
    let mut verlet = Verlet::new(rcut, skin, &pos, Some(&cell0)).unwrap();
    let mut stale_missed = false;
    let first = verlet.clone();
    for _ in 0..steps {
        for p in pos.iter_mut() {
            for v in p.iter_mut() {
                *v += 0.06 * rng.uniform();
            }
        }
        if deform {
            for row in h.iter_mut() {
                for v in row.iter_mut() {
                    *v += 0.01 * rng.uniform();
                }
            }
        }
        let cell = Cell::periodic(h).unwrap();
        verlet.update(&pos, Some(&cell)).unwrap();
        let got = rows(verlet.extended(), &verlet.within().unwrap());
        let want = fresh_rows(&pos, Some(&cell), rcut);
        assert_eq!(got, want);

        // The same list never rebuilt goes wrong: the test can tell.
        let mut stale = first.extended().clone();
        stale.refresh(&pos, Some(&cell)).unwrap();
        let stale_list = first.list().within(&stale.coords, rcut).unwrap();
        stale_missed |= rows(&stale, &stale_list) != want;
    }
    assert!(stale_missed, "trajectory too short to need a rebuild");
    assert!(verlet.builds() > 1, "never rebuilt");
    assert!(
        verlet.builds() < steps / 3,
        "rebuilt {} times",
        verlet.builds()
    );
}

#[test]
fn fixed_cell_trajectory() {
    run(false, 11);
    run(false, 12);
}

#[test]
fn deforming_cell_trajectory() {
    run(true, 21);
    run(true, 22);
}

#[test]
fn criterion_is_half_the_skin() {
    let (pos, cell) = jittered_lattice(3, 2.0, 5);
    let v = Verlet::new(2.5, 1.0, &pos, Some(&cell)).unwrap();
    let mut moved = pos.clone();
    moved[4][1] += 0.4999;
    moved[7][2] -= 0.3;
    assert!(!v.needs_rebuild(&moved, Some(&cell)));
    moved[7][2] -= 0.2002;
    assert!(v.needs_rebuild(&moved, Some(&cell)));
    assert!(v.needs_rebuild(&pos, None));
    assert!(v.needs_rebuild(&pos[1..], Some(&cell)));
}
