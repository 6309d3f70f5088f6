//! Type exclusions (`deepmd/dpmodel/utils/exclude_mask.py`): pairs of types that do not see
//! each other, and atom types whose outputs are zeroed.

use crate::import::{Dict, ModelError};

/// Symmetric table of excluded type pairs, with an extra index for "no neighbour" (`-1`),
/// which is never excluded (`PairExcludeMask`).
#[derive(Debug, Clone, PartialEq)]
pub struct PairExclude {
    ntypes: usize,
    /// The pairs as listed in the file.
    pub pairs: Vec<[usize; 2]>,
    keep: Vec<bool>,
}

impl PairExclude {
    /// No exclusions.
    pub fn none(ntypes: usize) -> Self {
        PairExclude {
            ntypes,
            pairs: Vec::new(),
            keep: vec![true; (ntypes + 1) * (ntypes + 1)],
        }
    }

    /// Reads the list of pairs at `key` (absent or null = none).
    pub fn parse(d: &Dict, key: &str, ntypes: usize) -> Result<Self, ModelError> {
        let mut out = Self::none(ntypes);
        if !d.has(key) {
            return Ok(out);
        }
        for item in d.list(key)? {
            let path = item.path().to_string();
            let pair: Vec<usize> = item
                .value()
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(|x| x.as_u64())
                        .map(|x| x as usize)
                        .collect()
                })
                .unwrap_or_default();
            let ok = item.value().as_array().is_some_and(|v| v.len() == 2) && pair.len() == 2;
            if !ok || pair.iter().any(|&t| t >= ntypes) {
                return Err(ModelError::field(
                    path,
                    format!(
                        "expected a pair of type indices below {ntypes}, found {}",
                        item.value()
                    ),
                ));
            }
            let (a, b) = (pair[0], pair[1]);
            out.keep[a * (ntypes + 1) + b] = false;
            out.keep[b * (ntypes + 1) + a] = false;
            out.pairs.push([a, b]);
        }
        Ok(out)
    }

    /// True if nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Whether the pair (centre type `ti`, neighbour type `tj`) interacts; `tj = None` is an
    /// empty slot.
    #[inline]
    pub fn keeps(&self, ti: usize, tj: Option<usize>) -> bool {
        self.keep[ti * (self.ntypes + 1) + tj.unwrap_or(self.ntypes)]
    }
}

/// Atom types whose per-atom outputs are zeroed (`AtomExcludeMask`).
#[derive(Debug, Clone, PartialEq)]
pub struct AtomExclude {
    /// The types as listed in the file.
    pub types: Vec<usize>,
    excluded: Vec<bool>,
}

impl AtomExclude {
    /// Reads the list of types at `key` (absent or null = none).
    pub fn parse(d: &Dict, key: &str, ntypes: usize) -> Result<Self, ModelError> {
        let types = if d.has(key) {
            d.usize_list(key)?
        } else {
            Vec::new()
        };
        let mut excluded = vec![false; ntypes];
        for &t in &types {
            if t >= ntypes {
                return Err(d.err(key, format!("type {t} is not below ntypes = {ntypes}")));
            }
            excluded[t] = true;
        }
        Ok(AtomExclude { types, excluded })
    }

    /// Whether atoms of type `t` are excluded.
    #[inline]
    pub fn excludes(&self, t: usize) -> bool {
        self.excluded[t]
    }
}
