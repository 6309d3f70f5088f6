//! DeePMD-kit's padded `nlist` layout, with an account of what did not fit.

use rayon::prelude::*;

use crate::error::NlistError;
use crate::list::NeighborList;

/// How many neighbour slots each local atom gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sel {
    /// One section of this width, all types mixed (DeePMD `mixed_types`, e.g. DPA3).
    Mixed(usize),
    /// One section per type, `[sel[0] | sel[1] | …]` (type-distinguished, e.g. se_e2_a).
    Typed(Vec<usize>),
}

impl Sel {
    /// Slots per atom: `sum(sel)`.
    pub fn width(&self) -> usize {
        match self {
            Sel::Mixed(n) => *n,
            Sel::Typed(s) => s.iter().sum(),
        }
    }

    /// Section widths.
    pub fn sections(&self) -> Vec<usize> {
        match self {
            Sel::Mixed(n) => vec![*n],
            Sel::Typed(s) => s.clone(),
        }
    }
}

/// Overflow of one section: local atoms with more neighbours than the section has slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionOverflow {
    /// Slots in the section.
    pub sel: usize,
    /// Number of local atoms whose neighbour count (of this section's type) exceeds `sel`.
    pub atoms_over: usize,
    /// The atom with the most such neighbours (lowest index on ties) and that count, if any
    /// atom overflowed.
    pub worst: Option<(usize, usize)>,
}

/// What the dense layout could not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overflow {
    /// Per section (one for [`Sel::Mixed`]).
    pub sections: Vec<SectionOverflow>,
    /// Neighbours within the cutoff left out of the dense list, over all atoms.
    pub dropped: usize,
}

/// A neighbour list in DeePMD-kit's `nlist` layout: `nloc × width` row-major, entries are
/// extended-atom indices or `-1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// Number of rows (local atoms).
    pub nloc: usize,
    /// Slots per row, `sum(sel)`.
    pub width: usize,
    /// Section widths (`[width]` for mixed types).
    pub sections: Vec<usize>,
    /// The table, row `i` at `nlist[i * width..(i + 1) * width]`.
    pub nlist: Vec<i32>,
    /// Neighbours that did not fit.
    pub overflow: Overflow,
}

impl Dense {
    /// Row of local atom `i`.
    pub fn row(&self, i: usize) -> &[i32] {
        &self.nlist[i * self.width..(i + 1) * self.width]
    }

    /// A human-readable warning naming the worst atom of every overflowing section, or `None`
    /// if every neighbour within the cutoff has a slot.
    pub fn warning(&self) -> Option<String> {
        if self.overflow.dropped == 0 {
            return None;
        }
        let typed = self.sections.len() > 1;
        let parts: Vec<String> = self
            .overflow
            .sections
            .iter()
            .enumerate()
            .filter_map(|(t, s)| {
                let (atom, count) = s.worst?;
                let what = if typed {
                    format!("type-{t} neighbours than sel[{t}] = {}", s.sel)
                } else {
                    format!("neighbours than sel = {}", s.sel)
                };
                Some(format!(
                    "{} of {} atoms have more {what} (worst: local atom {atom} with {count})",
                    s.atoms_over, self.nloc
                ))
            })
            .collect();
        Some(format!(
            "neighbour list overflow: {}; {} neighbours within the cutoff were dropped \
             (nearest kept, as DeePMD-kit does); increase sel",
            parts.join("; "),
            self.overflow.dropped
        ))
    }
}

impl NeighborList {
    /// The list in DeePMD-kit's dense layout, as `build_neighbor_list` (and, for
    /// [`Sel::Typed`], `nlist_distinguish_types`) in `deepmd/dpmodel/utils/nlist.py` produce
    /// it: rows keep the `sum(sel)` nearest neighbours; a typed row then splits them into
    /// sections, section `t` holding the first `sel[t]` type-`t` neighbours in distance order;
    /// empty slots are `-1`. As in DeePMD-kit, an over-full type can push another type's
    /// neighbours out of the nearest `sum(sel)`. Unlike DeePMD-kit, every dropped neighbour
    /// is counted in [`Dense::overflow`].
    ///
    /// The rows must be sorted by current distance, as [`NeighborList::build`] and
    /// [`NeighborList::within`] leave them. `types` has one entry per extended atom
    /// (see [`crate::Extended::extend_values`]).
    pub fn to_dense(&self, types: &[usize], sel: &Sel) -> Result<Dense, NlistError> {
        if types.len() != self.nall() {
            return Err(NlistError::LengthMismatch {
                what: "types",
                got: types.len(),
                expected: self.nall(),
            });
        }
        if self.nall() > i32::MAX as usize {
            return Err(NlistError::TooManyAtoms {
                n: self.nall(),
                max: i32::MAX as usize,
            });
        }
        let sections = sel.sections();
        let nsec = sections.len();
        let typed = matches!(sel, Sel::Typed(_));
        if typed {
            if let Some(atom) = types.iter().position(|&t| t >= nsec) {
                return Err(NlistError::TypeOutOfRange {
                    atom,
                    ty: types[atom],
                    ntypes: nsec,
                });
            }
        }
        let width = sel.width();
        let nloc = self.nloc();
        let mut starts = Vec::with_capacity(nsec);
        let mut acc = 0;
        for &s in &sections {
            starts.push(acc);
            acc += s;
        }

        let mut nlist = vec![-1i32; nloc * width];
        // Per atom: neighbour count of each section's kind, then how many slots were filled.
        let mut counts = vec![0u32; nloc * (nsec + 1)];
        let fill_row = |i: usize, row: &mut [i32], cnt: &mut [u32]| {
            let nb = self.neighbors(i);
            let mut placed = 0;
            if typed {
                let mut fill = vec![0usize; nsec];
                for (rank, &j) in nb.iter().enumerate() {
                    let t = types[j as usize];
                    cnt[t] += 1;
                    if rank < width && fill[t] < sections[t] {
                        row[starts[t] + fill[t]] = j as i32;
                        fill[t] += 1;
                        placed += 1;
                    }
                }
            } else {
                cnt[0] = nb.len() as u32;
                placed = nb.len().min(width);
                for (slot, &j) in row.iter_mut().zip(nb) {
                    *slot = j as i32;
                }
            }
            cnt[nsec] = placed as u32;
        };
        if width > 0 {
            nlist
                .par_chunks_mut(width)
                .zip(counts.par_chunks_mut(nsec + 1))
                .enumerate()
                .for_each(|(i, (row, cnt))| fill_row(i, row, cnt));
        } else {
            counts
                .par_chunks_mut(nsec + 1)
                .enumerate()
                .for_each(|(i, cnt)| fill_row(i, &mut [], cnt));
        }

        let mut over: Vec<SectionOverflow> = sections
            .iter()
            .map(|&sel| SectionOverflow {
                sel,
                atoms_over: 0,
                worst: None,
            })
            .collect();
        let mut dropped = 0;
        for (i, cnt) in counts.chunks(nsec + 1).enumerate() {
            dropped += self.count(i) - cnt[nsec] as usize;
            for (t, s) in over.iter_mut().enumerate() {
                let c = cnt[t] as usize;
                if c > s.sel {
                    s.atoms_over += 1;
                    if s.worst.is_none_or(|(_, w)| c > w) {
                        s.worst = Some((i, c));
                    }
                }
            }
        }
        Ok(Dense {
            nloc,
            width,
            sections,
            nlist,
            overflow: Overflow {
                sections: over,
                dropped,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Atom 0 at the origin with neighbours on the x axis at distances 1, 2, 3, … .
    fn line(n: usize) -> NeighborList {
        let coords: Vec<[f64; 3]> = (0..=n).map(|k| [k as f64, 0.0, 0.0]).collect();
        NeighborList::build(&coords, 1, n as f64 + 0.5).unwrap()
    }

    #[test]
    fn mixed_pads_and_truncates() {
        let nl = line(3);
        let d = nl.to_dense(&[0; 4], &Sel::Mixed(5)).unwrap();
        assert_eq!(d.row(0), &[1, 2, 3, -1, -1]);
        assert_eq!(d.warning(), None);
        let d = nl.to_dense(&[0; 4], &Sel::Mixed(2)).unwrap();
        assert_eq!(d.nlist, vec![1, 2]);
        assert_eq!(d.overflow.dropped, 1);
        assert_eq!(d.overflow.sections[0].worst, Some((0, 3)));
        let w = d.warning().unwrap();
        assert!(
            w.contains("local atom 0 with 3") && w.contains("sel = 2"),
            "{w}"
        );
    }

    #[test]
    fn typed_sections_follow_deepmd() {
        // Types by distance rank: 1, 0, 1, 1, 0.
        let nl = line(5);
        let types = [0, 1, 0, 1, 1, 0];
        let d = nl.to_dense(&types, &Sel::Typed(vec![3, 2])).unwrap();
        assert_eq!(d.row(0), &[2, 5, -1, 1, 3]);
        assert_eq!(d.overflow.dropped, 1);
        assert_eq!(d.overflow.sections[0].atoms_over, 0);
        assert_eq!(d.overflow.sections[1].worst, Some((0, 3)));
        assert!(d
            .warning()
            .unwrap()
            .contains("type-1 neighbours than sel[1] = 2"));
        // sum(sel) = 2 keeps the two nearest (types 1, 0) before sectioning: the type-0
        // neighbour at rank 3 is lost although its section has room.
        let d = nl.to_dense(&types, &Sel::Typed(vec![1, 1])).unwrap();
        assert_eq!(d.row(0), &[2, 1]);
        assert_eq!(d.overflow.dropped, 3);
        assert!(matches!(
            nl.to_dense(&types, &Sel::Typed(vec![1])),
            Err(NlistError::TypeOutOfRange {
                atom: 1,
                ty: 1,
                ntypes: 1
            })
        ));
        assert!(nl.to_dense(&types[..2], &Sel::Mixed(1)).is_err());
    }

    #[test]
    fn zero_width_counts_everything_as_dropped() {
        let d = line(2).to_dense(&[0; 3], &Sel::Mixed(0)).unwrap();
        assert!(d.nlist.is_empty());
        assert_eq!(d.overflow.dropped, 2);
    }
}
