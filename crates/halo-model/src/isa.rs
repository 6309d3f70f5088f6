//! Run-time choice of instruction set for the hand-fused kernels.
//!
//! The crate is built for the baseline x86-64 target, so plain Rust loops vectorise to SSE2
//! (two f64 lanes). [`multiversion!`] compiles a kernel entry point twice more, for AVX2+FMA
//! and for AVX-512, and picks one per call from the CPU's features (`std` caches the
//! detection). Everything the entry point inlines is compiled for the chosen set, so its
//! helpers are `#[inline(always)]`. Rust never contracts `a * b + c` into an FMA or reorders
//! a floating-point sum on its own, so every variant gives the same bits.

/// Instruction-set levels a multiversioned kernel is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Baseline x86-64 (or any other architecture).
    Baseline,
    /// AVX2 and FMA (x86-64-v3).
    Avx2,
    /// AVX-512 F/DQ/VL on top of AVX2 and FMA.
    Avx512,
}

/// The best level this CPU supports, detected once: `vdot` asks on every call, from inside
/// the pair loops, and five feature lookups per call showed in profiles.
#[inline]
pub(crate) fn level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(detect)
}

/// [`level`]'s detection.
fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
        {
            return Level::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Baseline
}

/// `multiversion!(vis fn name<T: Bound>(args) => imp);` defines `name`, which runs `imp`
/// (an `#[inline(always)]` function with the same arguments) compiled for [`level`].
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident<$t:ident: $bound:path>($($arg:ident: $ty:ty),* $(,)?) => $imp:path) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$t: $bound>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx512<$t: $bound>($($arg: $ty),*) {
                    $imp($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2<$t: $bound>($($arg: $ty),*) {
                    $imp($($arg),*)
                }
                match $crate::isa::level() {
                    // SAFETY: `level` found AVX-512 F/DQ/VL, AVX2 and FMA on this CPU.
                    $crate::isa::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: `level` found AVX2 and FMA on this CPU.
                    $crate::isa::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::isa::Level::Baseline => {}
                }
            }
            $imp($($arg),*)
        }
    };
}
pub(crate) use multiversion;
