//! Restart checkpoints: the exact state of a run, in one self-checking binary file.
//!
//! Layout (all integers and floats little-endian; format version [`VERSION`]):
//!
//! ```text
//! magic      8 bytes  "HALOMDCK"
//! version    u32
//! length     u64      bytes of the payload that follows
//! payload    length bytes (see below)
//! crc32      u32      CRC-32 (IEEE) of everything before it
//! ```
//!
//! The payload holds, in order: `step u64`, `time f64`, `seed u64`, `nranks u64`,
//! `model str`, `integrator str`, the cell (`u8` 0/1, then 9 `f64` row-major and 3 `u8`
//! periodic flags), `type_names` (`u64` count, then `str`s), `natoms u64` followed by the
//! per-atom arrays in gid order (`types u64`, `mass f64`, `x 3×f64`, `v 3×f64`,
//! `image 3×i32`), `integrator_state` (`u64` count, `f64`s) and `outputs` (`u64` count,
//! then `str` path and `u64` byte length). A `str` is a `u64` byte count and UTF-8 bytes.
//!
//! Floats are stored as their bit patterns, so a restart continues bit for bit. Reading
//! checks the magic, the version, the length and the checksum before decoding, and every
//! count is bounded by the bytes that remain, so a corrupt count can neither panic nor
//! allocate gigabytes. Files are replaced atomically ([`write_atomic_bytes`]): a crash
//! leaves either the old checkpoint or the new one, never a mixture.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use halo_core::{Cell, Vec3};

use crate::error::MdError;

/// First eight bytes of every checkpoint.
pub const MAGIC: &[u8; 8] = b"HALOMDCK";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Bytes before the payload: magic, version, payload length.
const HEADER: usize = 8 + 4 + 8;
/// Bytes after the payload: the CRC-32.
const TRAILER: usize = 4;
/// Stored bytes per atom: type, mass, x, v, image.
const PER_ATOM: usize = 8 + 8 + 24 + 24 + 12;

/// Everything needed to continue a run exactly where it stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Last completed step.
    pub step: u64,
    /// Simulated time at `step` (fs).
    pub time: f64,
    /// Seed of the counter-based random numbers.
    pub seed: u64,
    /// The cell at `step` (`None` for a non-periodic system without a box).
    pub cell: Option<Cell>,
    /// Element name of each type index.
    pub type_names: Vec<String>,
    /// Type of each atom, in gid order.
    pub types: Vec<usize>,
    /// Mass of each atom (amu), in gid order.
    pub mass: Vec<f64>,
    /// Wrapped position of each atom (Å), in gid order.
    pub x: Vec<Vec3>,
    /// Velocity of each atom (Å/fs), in gid order.
    pub v: Vec<Vec3>,
    /// Periodic image count of each atom, in gid order.
    pub image: Vec<[i32; 3]>,
    /// Name of the integrator that wrote `integrator_state`.
    pub integrator: String,
    /// The integrator's exact state, as its `state()` returns it.
    pub integrator_state: Vec<f64>,
    /// Output file path → its byte length at checkpoint time (restart truncates to it).
    pub outputs: Vec<(String, u64)>,
    /// Number of ranks of the run that wrote it.
    pub nranks: usize,
    /// Model file path of the run that wrote it.
    pub model: String,
}

impl Checkpoint {
    /// Number of atoms.
    pub fn natoms(&self) -> usize {
        self.types.len()
    }

    /// Encodes the checkpoint (header, payload, checksum).
    ///
    /// Fails only if the per-atom arrays disagree in length or a type index is out of
    /// range — a checkpoint that could not be read back is refused at write time.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        self.check()?;
        let n = self.natoms();
        let mut p = Vec::with_capacity(256 + n * PER_ATOM + 8 * self.integrator_state.len());
        put_u64(&mut p, self.step);
        put_f64(&mut p, self.time);
        put_u64(&mut p, self.seed);
        put_u64(&mut p, self.nranks as u64);
        put_str(&mut p, &self.model);
        put_str(&mut p, &self.integrator);
        match &self.cell {
            None => p.push(0),
            Some(cell) => {
                p.push(1);
                for row in cell.matrix() {
                    for &x in row {
                        put_f64(&mut p, x);
                    }
                }
                p.extend(cell.pbc().map(u8::from));
            }
        }
        put_u64(&mut p, self.type_names.len() as u64);
        for name in &self.type_names {
            put_str(&mut p, name);
        }
        put_u64(&mut p, n as u64);
        for &t in &self.types {
            put_u64(&mut p, t as u64);
        }
        for &m in &self.mass {
            put_f64(&mut p, m);
        }
        for r in self.x.iter().chain(&self.v) {
            for &c in r {
                put_f64(&mut p, c);
            }
        }
        for im in &self.image {
            for &c in im {
                p.extend_from_slice(&c.to_le_bytes());
            }
        }
        put_u64(&mut p, self.integrator_state.len() as u64);
        for &s in &self.integrator_state {
            put_f64(&mut p, s);
        }
        put_u64(&mut p, self.outputs.len() as u64);
        for (path, len) in &self.outputs {
            put_str(&mut p, path);
            put_u64(&mut p, *len);
        }

        let mut out = Vec::with_capacity(HEADER + p.len() + TRAILER);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        put_u64(&mut out, p.len() as u64);
        out.extend_from_slice(&p);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Decodes a checkpoint; the error message says what is wrong (without the path).
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint, String> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            if MAGIC.starts_with(bytes) {
                return Err(format!(
                    "truncated: {} bytes, too short for the header",
                    bytes.len()
                ));
            }
            return Err("not a halomd checkpoint (bad magic bytes)".to_string());
        }
        if bytes.len() < HEADER {
            return Err(format!(
                "truncated: {} bytes, the header alone needs {HEADER}",
                bytes.len()
            ));
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != VERSION {
            return Err(format!(
                "format version {version}, but this halomd reads version {VERSION}"
            ));
        }
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(&bytes[12..HEADER]);
        let payload_len = u64::from_le_bytes(len_bytes);
        let available = (bytes.len() - HEADER) as u64;
        let expected = payload_len.checked_add(TRAILER as u64);
        match expected {
            Some(e) if e == available => {}
            Some(e) if e > available => {
                return Err(format!(
                    "truncated: the header announces {payload_len} payload bytes, \
                     the file has {} after the header (the checksum included)",
                    available
                ))
            }
            _ => {
                return Err(format!(
                    "{} unexpected bytes after the end of the checkpoint \
                     (the header announces {payload_len} payload bytes)",
                    available.saturating_sub(payload_len.saturating_add(TRAILER as u64))
                ))
            }
        }
        let body_end = bytes.len() - TRAILER;
        let stored = u32::from_le_bytes([
            bytes[body_end],
            bytes[body_end + 1],
            bytes[body_end + 2],
            bytes[body_end + 3],
        ]);
        let computed = crc32fast::hash(&bytes[..body_end]);
        if stored != computed {
            return Err(format!(
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): \
                 the file is corrupt"
            ));
        }
        decode_payload(&bytes[HEADER..body_end])
    }

    /// Reads and verifies a checkpoint file.
    pub fn read(path: &Path) -> Result<Checkpoint, MdError> {
        read(path)
    }

    /// Writes the checkpoint atomically (see [`write_atomic`]).
    pub fn write_atomic(&self, path: &Path) -> Result<(), MdError> {
        write_atomic(path, self)
    }

    /// Array lengths agree and every type index names a type.
    fn check(&self) -> Result<(), String> {
        let n = self.types.len();
        for (what, len) in [
            ("mass", self.mass.len()),
            ("x", self.x.len()),
            ("v", self.v.len()),
            ("image", self.image.len()),
        ] {
            if len != n {
                return Err(format!("{what} has {len} entries for {n} atoms"));
            }
        }
        if let Some((i, &t)) = self
            .types
            .iter()
            .enumerate()
            .find(|(_, &t)| t >= self.type_names.len())
        {
            return Err(format!(
                "atom {i} has type {t}, but there are {} type names",
                self.type_names.len()
            ));
        }
        Ok(())
    }
}

/// Reads and verifies a checkpoint file; every problem is an [`MdError::Checkpoint`].
pub fn read(path: &Path) -> Result<Checkpoint, MdError> {
    let err = |msg: String| MdError::Checkpoint {
        path: path.display().to_string(),
        msg,
    };
    let bytes = fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    Checkpoint::from_bytes(&bytes).map_err(err)
}

/// Writes `ck` to `path` atomically: the old file stays intact until the new one is
/// complete on disk.
pub fn write_atomic(path: &Path, ck: &Checkpoint) -> Result<(), MdError> {
    let bytes = ck.to_bytes().map_err(|msg| MdError::Checkpoint {
        path: path.display().to_string(),
        msg: format!("refusing to write an inconsistent checkpoint: {msg}"),
    })?;
    write_atomic_bytes(path, &bytes)
}

/// Replaces `path` with `bytes` atomically (temp file, fsync, rename, fsync directory).
pub fn write_atomic_bytes(path: &Path, bytes: &[u8]) -> Result<(), MdError> {
    stage(path, bytes)?.commit()
}

/// Writes `bytes` to the temporary file of `path` (synced to disk) without touching
/// `path` itself; [`Staged::commit`] then renames it into place.
///
/// Splitting the two lets a caller do other work (or crash) in between without ever
/// exposing a partial `path`. The temporary file is `.<name>.tmp.<pid>` next to `path`,
/// because a rename is only atomic within one file system.
pub fn stage(path: &Path, bytes: &[u8]) -> Result<Staged, MdError> {
    let temp = temp_path(path)?;
    let staged = Staged {
        temp,
        target: path.to_path_buf(),
        committed: false,
    };
    let result = File::create(&staged.temp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    // On failure `staged` is dropped here, which removes the partial temporary file.
    result.map_err(|e| MdError::io(&staged.temp, e))?;
    Ok(staged)
}

/// The temporary file name used for `path`: `.<name>.tmp.<pid>` in the same directory.
pub fn temp_path(path: &Path) -> Result<PathBuf, MdError> {
    let name = path.file_name().ok_or_else(|| {
        MdError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
        )
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".tmp.{}", std::process::id()));
    Ok(path.with_file_name(temp_name))
}

/// A fully written and synced temporary file waiting to replace its target.
///
/// Dropping it without [`Staged::commit`] removes the temporary file and leaves the
/// target as it was.
#[derive(Debug)]
pub struct Staged {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Staged {
    /// The temporary file.
    pub fn temp(&self) -> &Path {
        &self.temp
    }

    /// Renames the temporary file over the target and syncs the directory, so the
    /// rename itself survives a power cut.
    pub fn commit(mut self) -> Result<(), MdError> {
        fs::rename(&self.temp, &self.target).map_err(|e| MdError::io(&self.target, e))?;
        self.committed = true;
        sync_dir(&self.target)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the error that got us here matters more than a leftover file.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(unix)]
fn sync_dir(path: &Path) -> Result<(), MdError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| MdError::io(dir, e))
}

#[cfg(not(unix))]
fn sync_dir(_path: &Path) -> Result<(), MdError> {
    // Directories cannot be opened for syncing here; the rename is as durable as it gets.
    Ok(())
}

fn put_u64(out: &mut Vec<u8>, x: u64) {
    out.extend_from_slice(&x.to_le_bytes());
}

fn put_f64(out: &mut Vec<u8>, x: f64) {
    out.extend_from_slice(&x.to_bits().to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A bounds-checked cursor over the payload; every failure names the field.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "{what}: needs {n} bytes at payload offset {}, only {} left",
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn usize(&mut self, what: &str) -> Result<usize, String> {
        let x = self.u64(what)?;
        usize::try_from(x).map_err(|_| format!("{what}: {x} does not fit in memory"))
    }

    fn f64(&mut self, what: &str) -> Result<f64, String> {
        Ok(f64::from_bits(self.u64(what)?))
    }

    fn i32(&mut self, what: &str) -> Result<i32, String> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    /// A count of items of at least `min_size` bytes each, checked against what is left
    /// before anything is allocated for it.
    fn count(&mut self, what: &str, min_size: usize) -> Result<usize, String> {
        let n = self.u64(what)?;
        let left = self.remaining() as u64;
        if n.saturating_mul(min_size as u64) > left {
            return Err(format!(
                "{what}: count {n} needs at least {} bytes, only {left} left",
                n.saturating_mul(min_size as u64)
            ));
        }
        Ok(n as usize)
    }

    fn str(&mut self, what: &str) -> Result<String, String> {
        let n = self.count(what, 1)?;
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what}: not valid UTF-8"))
    }

    fn bool(&mut self, what: &str) -> Result<bool, String> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("{what}: flag byte {b}, expected 0 or 1")),
        }
    }

    fn vec3(&mut self, what: &str) -> Result<Vec3, String> {
        Ok([self.f64(what)?, self.f64(what)?, self.f64(what)?])
    }
}

fn decode_payload(bytes: &[u8]) -> Result<Checkpoint, String> {
    let mut r = Reader { bytes, pos: 0 };
    let step = r.u64("step")?;
    let time = r.f64("time")?;
    let seed = r.u64("seed")?;
    let nranks = r.usize("nranks")?;
    let model = r.str("model path")?;
    let integrator = r.str("integrator name")?;
    let cell = if r.bool("cell flag")? {
        let mut h = [[0.0; 3]; 3];
        for row in &mut h {
            *row = r.vec3("cell matrix")?;
        }
        let pbc = [
            r.bool("cell pbc")?,
            r.bool("cell pbc")?,
            r.bool("cell pbc")?,
        ];
        Some(Cell::new(h, pbc).map_err(|e| format!("cell: {e}"))?)
    } else {
        None
    };
    let ntypes = r.count("type name count", 8)?;
    let type_names = (0..ntypes)
        .map(|_| r.str("type name"))
        .collect::<Result<Vec<_>, _>>()?;
    let n = r.count("atom count", PER_ATOM)?;
    let types = (0..n)
        .map(|_| r.usize("types"))
        .collect::<Result<Vec<_>, _>>()?;
    let mass = (0..n)
        .map(|_| r.f64("mass"))
        .collect::<Result<Vec<_>, _>>()?;
    let x = (0..n)
        .map(|_| r.vec3("positions"))
        .collect::<Result<Vec<_>, _>>()?;
    let v = (0..n)
        .map(|_| r.vec3("velocities"))
        .collect::<Result<Vec<_>, _>>()?;
    let image = (0..n)
        .map(|_| Ok([r.i32("image")?, r.i32("image")?, r.i32("image")?]))
        .collect::<Result<Vec<_>, String>>()?;
    let nstate = r.count("integrator state length", 8)?;
    let integrator_state = (0..nstate)
        .map(|_| r.f64("integrator state"))
        .collect::<Result<Vec<_>, _>>()?;
    let nout = r.count("output count", 16)?;
    let outputs = (0..nout)
        .map(|_| Ok((r.str("output path")?, r.u64("output length")?)))
        .collect::<Result<Vec<_>, String>>()?;
    if r.remaining() != 0 {
        return Err(format!(
            "{} unexplained bytes at the end of the payload",
            r.remaining()
        ));
    }
    let ck = Checkpoint {
        step,
        time,
        seed,
        cell,
        type_names,
        types,
        mass,
        x,
        v,
        image,
        integrator,
        integrator_state,
        outputs,
        nranks,
        model,
    };
    ck.check()?;
    Ok(ck)
}
