//! The triclinic simulation cell with per-axis periodicity.

use crate::{CoreError, Mat3, Vec3};

/// A triclinic cell: lattice vectors as rows `a`, `b`, `c` (Å) and a periodic flag per axis.
///
/// Fractional coordinates `s` relate to Cartesian `x` by `x = s · H` where `H` has the
/// lattice vectors as rows (DeePMD-kit and ASE convention). The cell is validated on
/// construction: finite, non-singular and right-handed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    h: Mat3,
    inv: Mat3,
    pbc: [bool; 3],
}

/// Relative volume below which a cell counts as singular: `V / (|a| |b| |c|)`.
const SINGULAR_TOL: f64 = 1e-10;

impl Cell {
    /// Builds a cell from lattice vectors (rows) and per-axis periodicity.
    pub fn new(h: Mat3, pbc: [bool; 3]) -> Result<Self, CoreError> {
        for (row, r) in h.iter().enumerate() {
            for (col, &value) in r.iter().enumerate() {
                if !value.is_finite() {
                    return Err(CoreError::NonFiniteCell { row, col, value });
                }
            }
        }
        let volume = det(&h);
        let scale = norm(h[0]) * norm(h[1]) * norm(h[2]);
        if scale == 0.0 || volume.abs() <= SINGULAR_TOL * scale {
            return Err(CoreError::SingularCell { volume });
        }
        if volume < 0.0 {
            return Err(CoreError::LeftHandedCell { volume });
        }
        Ok(Cell {
            h,
            inv: inverse(&h, volume),
            pbc,
        })
    }

    /// A fully periodic cell.
    pub fn periodic(h: Mat3) -> Result<Self, CoreError> {
        Self::new(h, [true; 3])
    }

    /// A fully periodic orthorhombic cell with edge lengths `a`, `b`, `c`.
    pub fn orthorhombic(a: f64, b: f64, c: f64) -> Result<Self, CoreError> {
        Self::periodic([[a, 0.0, 0.0], [0.0, b, 0.0], [0.0, 0.0, c]])
    }

    /// Lattice vectors as rows.
    pub fn matrix(&self) -> &Mat3 {
        &self.h
    }

    /// Inverse of [`Cell::matrix`]: `s = x · H⁻¹`.
    pub fn inverse(&self) -> &Mat3 {
        &self.inv
    }

    /// Periodicity per axis.
    pub fn pbc(&self) -> [bool; 3] {
        self.pbc
    }

    /// Same lattice with other periodic flags.
    pub fn with_pbc(&self, pbc: [bool; 3]) -> Self {
        Cell { pbc, ..*self }
    }

    /// True if any axis is periodic.
    pub fn any_periodic(&self) -> bool {
        self.pbc.iter().any(|&p| p)
    }

    /// Cell volume in Å³ (positive).
    pub fn volume(&self) -> f64 {
        det(&self.h)
    }

    /// Lengths |a|, |b|, |c|.
    pub fn lengths(&self) -> Vec3 {
        [norm(self.h[0]), norm(self.h[1]), norm(self.h[2])]
    }

    /// Angles α (b,c), β (a,c), γ (a,b) in degrees.
    pub fn angles(&self) -> Vec3 {
        let ang = |u: Vec3, v: Vec3| (dot(u, v) / (norm(u) * norm(v))).acos().to_degrees();
        [
            ang(self.h[1], self.h[2]),
            ang(self.h[0], self.h[2]),
            ang(self.h[0], self.h[1]),
        ]
    }

    /// Perpendicular distances between opposite faces: `V/|b×c|`, `V/|c×a|`, `V/|a×b|`.
    ///
    /// The number of periodic images needed along axis k for a cutoff `r` is
    /// `ceil(r / face_distances()[k])`.
    pub fn face_distances(&self) -> Vec3 {
        let v = self.volume();
        [
            v / norm(cross(self.h[1], self.h[2])),
            v / norm(cross(self.h[2], self.h[0])),
            v / norm(cross(self.h[0], self.h[1])),
        ]
    }

    /// Cartesian → fractional coordinates.
    pub fn to_frac(&self, x: Vec3) -> Vec3 {
        vec_mat(x, &self.inv)
    }

    /// Fractional → Cartesian coordinates.
    pub fn to_cart(&self, s: Vec3) -> Vec3 {
        vec_mat(s, &self.h)
    }

    /// Wraps a position into the cell along periodic axes (fractional coordinate in `[0, 1)`);
    /// non-periodic axes are left untouched.
    pub fn wrap(&self, x: Vec3) -> Vec3 {
        let mut s = self.to_frac(x);
        for (sk, &periodic) in s.iter_mut().zip(&self.pbc) {
            if periodic {
                *sk = wrap_unit(*sk);
            }
        }
        self.to_cart(s)
    }

    /// The Cartesian translation of the lattice vector combination `n · H`.
    pub fn shift(&self, n: [i32; 3]) -> Vec3 {
        self.to_cart([n[0] as f64, n[1] as f64, n[2] as f64])
    }
}

/// Maps a fractional coordinate into `[0, 1)`, robust to rounding at the upper edge.
pub fn wrap_unit(s: f64) -> f64 {
    let w = s - s.floor();
    if w >= 1.0 {
        0.0
    } else {
        w
    }
}

/// Determinant of a 3×3 matrix (signed volume of its rows).
pub fn det(m: &Mat3) -> f64 {
    dot(m[0], cross(m[1], m[2]))
}

fn inverse(m: &Mat3, det: f64) -> Mat3 {
    // Rows of the inverse's transpose are the reciprocal vectors; columns of inv are b×c/V …
    let c0 = cross(m[1], m[2]);
    let c1 = cross(m[2], m[0]);
    let c2 = cross(m[0], m[1]);
    let mut inv = [[0.0; 3]; 3];
    for i in 0..3 {
        inv[i] = [c0[i] / det, c1[i] / det, c2[i] / det];
    }
    inv
}

/// Row vector times matrix: `x · M`.
pub fn vec_mat(x: Vec3, m: &Mat3) -> Vec3 {
    [
        x[0] * m[0][0] + x[1] * m[1][0] + x[2] * m[2][0],
        x[0] * m[0][1] + x[1] * m[1][1] + x[2] * m[2][1],
        x[0] * m[0][2] + x[1] * m[1][2] + x[2] * m[2][2],
    ]
}

/// Dot product.
pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Cross product.
pub fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Euclidean norm.
pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tri() -> Cell {
        Cell::periodic([[5.0, 0.0, 0.0], [1.5, 4.0, 0.0], [-0.7, 0.9, 6.0]]).unwrap()
    }

    #[test]
    fn volume_and_faces() {
        let c = tri();
        assert!((c.volume() - 120.0).abs() < 1e-12);
        let d = c.face_distances();
        // Face distance along c is c_z for this lower-triangular cell.
        assert!((d[2] - 6.0).abs() < 1e-12);
        assert!(d.iter().all(|&x| x > 0.0 && x <= 6.0 + 1e-12));
        let o = Cell::orthorhombic(2.0, 3.0, 4.0).unwrap();
        assert_eq!(o.face_distances(), [2.0, 3.0, 4.0]);
        assert_eq!(o.lengths(), [2.0, 3.0, 4.0]);
        assert!(o.angles().iter().all(|a| (a - 90.0).abs() < 1e-12));
    }

    #[test]
    fn rejects_bad_cells() {
        let singular = [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
        assert!(matches!(
            Cell::periodic(singular),
            Err(CoreError::SingularCell { .. })
        ));
        let left = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]];
        assert!(matches!(
            Cell::periodic(left),
            Err(CoreError::LeftHandedCell { .. })
        ));
        let nan = [[f64::NAN, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let e = Cell::periodic(nan).unwrap_err();
        assert!(e.to_string().contains("(0,0)"), "{e}");
        assert!(Cell::periodic([[0.0; 3]; 3]).is_err());
    }

    #[test]
    fn wrap_respects_pbc() {
        let c = Cell::new(
            [[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]],
            [true, false, true],
        )
        .unwrap();
        let w = c.wrap([-1.0, 9.0, 4.0]);
        assert_eq!(w, [3.0, 9.0, 0.0]);
        assert_eq!(wrap_unit(-1e-18), 0.0);
    }

    proptest! {
        #[test]
        fn frac_roundtrip(x in -50.0..50.0f64, y in -50.0..50.0f64, z in -50.0..50.0f64) {
            let c = tri();
            let back = c.to_cart(c.to_frac([x, y, z]));
            for k in 0..3 {
                prop_assert!((back[k] - [x, y, z][k]).abs() < 1e-12);
            }
            let w = c.to_frac(c.wrap([x, y, z]));
            for s in w {
                prop_assert!((0.0..1.0).contains(&s) || (s - 1.0).abs() < 1e-12);
            }
        }
    }
}
