//! Dense row-major matrix products on caller-owned buffers, through the `gemm` crate.
//!
//! Callers parallelise over atoms themselves (fixed-size chunks, independent of the thread
//! count), so every product here runs single-threaded and the result of a chunk never depends
//! on how many threads exist.

use crate::Real;

/// Whether a row-major operand is used as stored or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Use the matrix as stored.
    N,
    /// Use its transpose.
    T,
}

/// A `k×n` row-major weight matrix kept with its transpose. Backward passes multiply by
/// `Wᵀ`, and gemm runs a row-major right-hand side 10–20 % faster than the same matrix read
/// transposed (measured on the DPA3 pair and edge shapes), so the transpose is made once,
/// at load time. Dereferences to `W` as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weight<T> {
    w: Vec<T>,
    t: Vec<T>,
}

impl<T: Copy> Weight<T> {
    /// `w` (`k×n`, row-major) and its transpose; panics if `w` is not `k·n` long (callers
    /// check shapes when they parse the model).
    pub fn new(k: usize, n: usize, w: Vec<T>) -> Self {
        assert_eq!(
            w.len(),
            k * n,
            "Weight: a {k}×{n} matrix needs {} values",
            k * n
        );
        let t = (0..n * k).map(|i| w[(i % k) * n + i / k]).collect();
        Weight { w, t }
    }

    /// `Wᵀ`, `n×k` row-major.
    pub fn t(&self) -> &[T] {
        &self.t
    }
}

impl<T> std::ops::Deref for Weight<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.w
    }
}

/// `C = beta·C + op(A)·op(B)` with `C` of shape `m×n` and inner dimension `k`; `beta` is
/// 0 (overwrite) or 1 (accumulate) in practice.
///
/// `A` is stored row-major as `m×k` (`Op::N`) or `k×m` (`Op::T`); `B` as `k×n` or `n×k`.
/// Panics if a buffer is too short: that is a bug in the calling kernel, not a user error.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    op_a: Op,
    b: &[T],
    op_b: Op,
    c: &mut [T],
    beta: T,
) {
    assert!(a.len() >= m * k, "matmul: lhs too short");
    assert!(b.len() >= k * n, "matmul: rhs too short");
    assert!(c.len() >= m * n, "matmul: dst too short");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if beta == T::zero() {
            c[..m * n].fill(T::zero());
        }
        return;
    }
    // Strides in elements: (column stride, row stride) of the logical operand.
    let (a_cs, a_rs) = match op_a {
        Op::N => (1, k as isize),
        Op::T => (m as isize, 1),
    };
    let (b_cs, b_rs) = match op_b {
        Op::N => (1, n as isize),
        Op::T => (k as isize, 1),
    };
    let read_dst = beta != T::zero();
    // SAFETY: the asserts above guarantee every index the strides reach lies inside `a`, `b`
    // and `c` (logical shapes m×k, k×n, m×n over buffers at least that long); `c` is a unique
    // borrow so it does not alias `a` or `b`; T is f32 or f64, both supported by gemm.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            read_dst,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            beta,
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f64], ta: Op, b: &[f64], tb: Op) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for l in 0..k {
                    let av = if ta == Op::N {
                        a[i * k + l]
                    } else {
                        a[l * m + i]
                    };
                    let bv = if tb == Op::N {
                        b[l * n + j]
                    } else {
                        b[j * k + l]
                    };
                    c[i * n + j] += av * bv;
                }
            }
        }
        c
    }

    #[test]
    fn weight_keeps_its_transpose() {
        let w = Weight::new(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(&w[..], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(w.t(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let (m, n, k) = (4, 3, 2);
        let a: Vec<f64> = (0..m * n).map(|i| (i as f64 * 0.37).sin()).collect();
        let (mut c1, mut c2) = (vec![0.0; m * k], vec![0.0; m * k]);
        matmul(m, k, n, &a, Op::N, &w, Op::T, &mut c1, 0.0);
        matmul(m, k, n, &a, Op::N, w.t(), Op::N, &mut c2, 0.0);
        // gemm may sum in another order for the other layout.
        for (x, y) in c1.iter().zip(&c2) {
            assert!((x - y).abs() < 1e-14 * x.abs().max(1.0), "{x} vs {y}");
        }
    }

    #[test]
    fn all_transpose_combinations() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.71).cos()).collect();
        for ta in [Op::N, Op::T] {
            for tb in [Op::N, Op::T] {
                let want = naive(m, n, k, &a, ta, &b, tb);
                let mut c = vec![1.0; m * n];
                matmul(m, n, k, &a, ta, &b, tb, &mut c, 0.0);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-14);
                }
                matmul(m, n, k, &a, ta, &b, tb, &mut c, 1.0);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - 2.0 * y).abs() < 1e-14);
                }
            }
        }
    }
}
