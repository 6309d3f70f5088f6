//! The seam between a model and the domain layer: how ghost rows get their values.
//!
//! A model works on an *extended* array of per-atom rows: `nloc` local rows followed by ghost
//! rows (periodic images and atoms owned by other ranks). Whenever a layer needs neighbour
//! features it asks an [`Exchange`] to fill the ghost rows from their owners (*forward*), and in
//! the backward pass to add the ghost-row gradients into their owners and zero the ghosts
//! (*reverse*). The model never learns how many ranks there are: on one rank the exchange is
//! a copy through `mapping` (self-swaps), on many it is communication.
//!
//! What a model exchanges is declared up front as [`ExchangeSlot`]s (its *comm manifest*), so
//! the runtime can size buffers once rather than per step.

use std::fmt;

/// Element type of an exchanged row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
        })
    }
}

/// One named quantity a model exchanges for ghost atoms, e.g. the node embedding of layer 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeSlot {
    /// Human-readable name, unique within a model (`"node_ebd.layer2"`).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Row width in elements.
    pub width: usize,
    /// Exchanged owner → ghosts before use.
    pub forward: bool,
    /// Gradient exchanged ghosts → owners (summed) in the backward pass.
    pub reverse: bool,
}

/// Mutable rows of one dtype, `nall × width` row-major.
#[derive(Debug)]
pub enum RowsMut<'a> {
    /// f32 rows.
    F32(&'a mut [f32]),
    /// f64 rows.
    F64(&'a mut [f64]),
}

impl RowsMut<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            RowsMut::F32(x) => x.len(),
            RowsMut::F64(x) => x.len(),
        }
    }

    /// True if there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Error raised by an exchange (a lost peer, a timeout, a buffer too small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeError(pub String);

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ghost exchange failed: {}", self.0)
    }
}

impl std::error::Error for ExchangeError {}

/// Fills ghost rows from owners and folds ghost gradients back into owners.
pub trait Exchange {
    /// Number of local (owned) rows; ghost rows follow them.
    fn nloc(&self) -> usize;
    /// Total rows (local + ghost).
    fn nall(&self) -> usize;
    /// Copies each ghost row `g ∈ [nloc, nall)` from its owner's row.
    fn forward(&mut self, rows: RowsMut<'_>, width: usize) -> Result<(), ExchangeError>;
    /// Adds each ghost row into its owner's row, then zeroes all ghost rows.
    fn reverse(&mut self, rows: RowsMut<'_>, width: usize) -> Result<(), ExchangeError>;
}

/// Single-process exchange through a `mapping` table (`mapping[g]` = owner of row `g`), the
/// DeePMD-kit convention for periodic images.
#[derive(Debug, Clone)]
pub struct MappingExchange {
    mapping: Vec<usize>,
    nloc: usize,
}

impl MappingExchange {
    /// Builds the exchange; `mapping.len()` is `nall` and `mapping[i] == i` for `i < nloc`.
    pub fn new(mapping: Vec<usize>, nloc: usize) -> Self {
        debug_assert!(mapping.iter().all(|&o| o < nloc.max(1)));
        MappingExchange { mapping, nloc }
    }
}

fn copy_rows<T: Copy>(x: &mut [T], mapping: &[usize], nloc: usize, width: usize) {
    for (g, &o) in mapping.iter().enumerate().skip(nloc) {
        x.copy_within(o * width..(o + 1) * width, g * width);
    }
}

fn fold_rows<T: Copy + std::ops::AddAssign + Default>(
    x: &mut [T],
    mapping: &[usize],
    nloc: usize,
    width: usize,
) {
    // Ghost order is fixed, so the summation order into each owner is deterministic.
    let (local, ghost) = x.split_at_mut(nloc * width);
    for (g, row) in ghost.chunks_exact_mut(width.max(1)).enumerate() {
        let o = mapping[nloc + g];
        for (dst, src) in local[o * width..(o + 1) * width]
            .iter_mut()
            .zip(row.iter_mut())
        {
            *dst += *src;
            *src = T::default();
        }
    }
}

impl Exchange for MappingExchange {
    fn nloc(&self) -> usize {
        self.nloc
    }

    fn nall(&self) -> usize {
        self.mapping.len()
    }

    fn forward(&mut self, rows: RowsMut<'_>, width: usize) -> Result<(), ExchangeError> {
        check_len(rows.len(), self.mapping.len(), width)?;
        match rows {
            RowsMut::F32(x) => copy_rows(x, &self.mapping, self.nloc, width),
            RowsMut::F64(x) => copy_rows(x, &self.mapping, self.nloc, width),
        }
        Ok(())
    }

    fn reverse(&mut self, rows: RowsMut<'_>, width: usize) -> Result<(), ExchangeError> {
        check_len(rows.len(), self.mapping.len(), width)?;
        if width == 0 {
            return Ok(());
        }
        match rows {
            RowsMut::F32(x) => fold_rows(x, &self.mapping, self.nloc, width),
            RowsMut::F64(x) => fold_rows(x, &self.mapping, self.nloc, width),
        }
        Ok(())
    }
}

fn check_len(len: usize, nall: usize, width: usize) -> Result<(), ExchangeError> {
    if len != nall * width {
        return Err(ExchangeError(format!(
            "row buffer has {len} elements, expected {nall} rows × {width}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_forward_and_reverse_are_adjoint() {
        // nloc = 2, ghosts map to 1, 0, 1.
        let mut ex = MappingExchange::new(vec![0, 1, 1, 0, 1], 2);
        let mut x = vec![1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        ex.forward(RowsMut::F64(&mut x), 2).unwrap();
        assert_eq!(x, vec![1.0, 2.0, 3.0, 4.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]);
        let mut g = vec![1.0f32, 1.0, 1.0, 1.0, 0.5, 0.5, 2.0, 2.0, 0.25, 0.25];
        ex.reverse(RowsMut::F32(&mut g), 2).unwrap();
        assert_eq!(g, vec![3.0, 3.0, 1.75, 1.75, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let err = ex.forward(RowsMut::F64(&mut [0.0; 3]), 2).unwrap_err();
        assert!(err.to_string().contains("expected 5 rows"));
    }
}
