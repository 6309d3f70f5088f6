//! A PNG plot of the thermo log, drawn without a plotting library.
//!
//! Plotting crates need system fonts, which a compute node may not have; this module rasterises
//! lines into an RGB buffer itself, labels the axes with a built-in 5×7 bitmap font and encodes
//! the image with the `png` crate. The figure ([`WIDTH`]×[`HEIGHT`]) has two panels sharing the
//! time axis (ps):
//! - energies as changes from their first value, `PE − PE₀`, `KE − KE₀` and
//!   `conserved − conserved₀` (eV): absolute energies differ by orders of magnitude, so on one
//!   axis the fluctuations and the drift of the conserved quantity — what one looks for —
//!   would be flat lines;
//! - temperature (K).
//!
//! The file is written atomically (temporary file in the same directory, then rename), so a
//! reader never sees a half-written image.

use std::io::Write;
use std::path::Path;

use crate::output::ThermoRow;
use crate::MdError;

/// Image width (pixels).
pub const WIDTH: usize = 900;
/// Image height (pixels).
pub const HEIGHT: usize = 600;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// Background colour.
pub const BACKGROUND: Rgb = [255, 255, 255];
/// Colour of the potential-energy curve.
pub const PE_COLOR: Rgb = [31, 119, 180];
/// Colour of the kinetic-energy curve.
pub const KE_COLOR: Rgb = [255, 127, 14];
/// Colour of the conserved-quantity curve.
pub const CONSERVED_COLOR: Rgb = [44, 160, 44];
/// Colour of the temperature curve.
pub const TEMPERATURE_COLOR: Rgb = [214, 39, 40];
const AXIS: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];
const TEXT: Rgb = [0, 0, 0];

/// A plot area in pixels: columns `x0..x1`, rows `y0..y1` (top to bottom), both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Panel {
    /// Left column.
    pub x0: usize,
    /// Right column.
    pub x1: usize,
    /// Top row.
    pub y0: usize,
    /// Bottom row.
    pub y1: usize,
}

/// The energy panel's plot area.
pub const ENERGY_PANEL: Panel = Panel {
    x0: 110,
    x1: 880,
    y0: 40,
    y1: 260,
};
/// The temperature panel's plot area.
pub const TEMPERATURE_PANEL: Panel = Panel {
    x0: 110,
    x1: 880,
    y0: 330,
    y1: 530,
};

/// An RGB raster.
#[derive(Debug, Clone)]
pub struct Image {
    /// Width (pixels).
    pub width: usize,
    /// Height (pixels).
    pub height: usize,
    /// Row-major RGB bytes.
    pub data: Vec<u8>,
}

impl Image {
    /// An image filled with `color`.
    pub fn new(width: usize, height: usize, color: Rgb) -> Image {
        Image {
            width,
            height,
            data: color.repeat(width * height),
        }
    }

    /// The colour at (`x`, `y`).
    pub fn get(&self, x: usize, y: usize) -> Rgb {
        let i = 3 * (y * self.width + x);
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Sets a pixel; coordinates outside the image are ignored.
    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = 3 * (y as usize * self.width + x as usize);
            self.data[i..i + 3].copy_from_slice(&c);
        }
    }

    /// A 1-pixel line (Bresenham), clipped to `clip`.
    fn line(&mut self, (xa, ya): (i64, i64), (xb, yb): (i64, i64), c: Rgb, clip: &Panel) {
        let (dx, dy) = ((xb - xa).abs(), -(yb - ya).abs());
        let (sx, sy) = (if xa < xb { 1 } else { -1 }, if ya < yb { 1 } else { -1 });
        let (mut x, mut y, mut err) = (xa, ya, dx + dy);
        loop {
            if x >= clip.x0 as i64
                && x <= clip.x1 as i64
                && y >= clip.y0 as i64
                && y <= clip.y1 as i64
            {
                self.set(x, y, c);
            }
            if x == xb && y == yb {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn hline(&mut self, x0: usize, x1: usize, y: usize, c: Rgb) {
        for x in x0..=x1 {
            self.set(x as i64, y as i64, c);
        }
    }

    fn vline(&mut self, x: usize, y0: usize, y1: usize, c: Rgb) {
        for y in y0..=y1 {
            self.set(x as i64, y as i64, c);
        }
    }

    fn fill(&mut self, x0: usize, y0: usize, w: usize, h: usize, c: Rgb) {
        for y in y0..y0 + h {
            self.hline(x0, x0 + w - 1, y, c);
        }
    }

    /// Draws `text` with its top-left corner at (`x`, `y`), each font pixel `scale`² pixels.
    pub fn text(&mut self, x: usize, y: usize, text: &str, scale: usize, c: Rgb) {
        let mut cx = x;
        for ch in text.chars() {
            let rows = glyph(ch);
            for (r, row) in rows.iter().enumerate() {
                for (k, bit) in row.bytes().enumerate() {
                    if bit == b'#' {
                        self.fill(cx + k * scale, y + r * scale, scale, scale, c);
                    }
                }
            }
            cx += ADVANCE * scale;
        }
    }

    /// Encodes the image as an 8-bit RGB PNG.
    pub fn to_png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&self.data)?;
        writer.finish()?;
        Ok(out)
    }
}

/// Horizontal distance between characters, in font pixels.
const ADVANCE: usize = 6;
/// Glyph height including descenders, in font pixels.
const GLYPH_ROWS: usize = 9;

/// Width in pixels of `text` drawn at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    (text.chars().count() * ADVANCE).saturating_sub(1) * scale
}

/// The 5-wide glyph of `ch` (rows top to bottom, `#` = ink; rows 7–8 are descenders). Characters
/// without a glyph are drawn as a box.
fn glyph(ch: char) -> &'static [&'static str] {
    match ch {
        ' ' => &[],
        '0' => &[
            " ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### ",
        ],
        '1' => &[
            "  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### ",
        ],
        '2' => &[
            " ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####",
        ],
        '3' => &[
            "#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### ",
        ],
        '4' => &[
            "   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # ",
        ],
        '5' => &[
            "#####", "#    ", "#### ", "    #", "    #", "#   #", " ### ",
        ],
        '6' => &[
            "  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### ",
        ],
        '7' => &[
            "#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   ",
        ],
        '8' => &[
            " ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### ",
        ],
        '9' => &[
            " ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  ",
        ],
        'A' => &[
            " ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #",
        ],
        'B' => &[
            "#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### ",
        ],
        'C' => &[
            " ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### ",
        ],
        'D' => &[
            "#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### ",
        ],
        'E' => &[
            "#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####",
        ],
        'F' => &[
            "#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    ",
        ],
        'G' => &[
            " ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####",
        ],
        'H' => &[
            "#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #",
        ],
        'I' => &[
            " ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### ",
        ],
        'J' => &[
            "  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  ",
        ],
        'K' => &[
            "#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #",
        ],
        'L' => &[
            "#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####",
        ],
        'M' => &[
            "#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #",
        ],
        'N' => &[
            "#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #",
        ],
        'O' => &[
            " ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### ",
        ],
        'P' => &[
            "#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    ",
        ],
        'Q' => &[
            " ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #",
        ],
        'R' => &[
            "#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #",
        ],
        'S' => &[
            " ####", "#    ", "#    ", " ### ", "    #", "    #", "#### ",
        ],
        'T' => &[
            "#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ",
        ],
        'U' => &[
            "#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### ",
        ],
        'V' => &[
            "#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  ",
        ],
        'W' => &[
            "#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # ",
        ],
        'X' => &[
            "#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #",
        ],
        'Y' => &[
            "#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  ",
        ],
        'Z' => &[
            "#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####",
        ],
        'a' => &[
            "     ", "     ", " ### ", "    #", " ####", "#   #", " ####",
        ],
        'b' => &[
            "#    ", "#    ", "# ## ", "##  #", "#   #", "#   #", "#### ",
        ],
        'c' => &[
            "     ", "     ", " ### ", "#    ", "#    ", "#   #", " ### ",
        ],
        'd' => &[
            "    #", "    #", " ## #", "#  ##", "#   #", "#   #", " ####",
        ],
        'e' => &[
            "     ", "     ", " ### ", "#   #", "#####", "#    ", " ### ",
        ],
        'f' => &[
            "  ## ", " #  #", " #   ", "###  ", " #   ", " #   ", " #   ",
        ],
        'g' => &[
            "     ", "     ", " ####", "#   #", "#   #", "#   #", " ####", "    #", " ### ",
        ],
        'h' => &[
            "#    ", "#    ", "# ## ", "##  #", "#   #", "#   #", "#   #",
        ],
        'i' => &[
            "  #  ", "     ", " ##  ", "  #  ", "  #  ", "  #  ", " ### ",
        ],
        'j' => &[
            "   # ", "     ", "  ## ", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  ",
        ],
        'k' => &[
            "#    ", "#    ", "#  # ", "# #  ", "##   ", "# #  ", "#  # ",
        ],
        'l' => &[
            " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### ",
        ],
        'm' => &[
            "     ", "     ", "## # ", "# # #", "# # #", "# # #", "# # #",
        ],
        'n' => &[
            "     ", "     ", "# ## ", "##  #", "#   #", "#   #", "#   #",
        ],
        'o' => &[
            "     ", "     ", " ### ", "#   #", "#   #", "#   #", " ### ",
        ],
        'p' => &[
            "     ", "     ", "#### ", "#   #", "#   #", "#   #", "#### ", "#    ", "#    ",
        ],
        'q' => &[
            "     ", "     ", " ####", "#   #", "#   #", "#   #", " ####", "    #", "    #",
        ],
        'r' => &[
            "     ", "     ", "# ## ", "##  #", "#    ", "#    ", "#    ",
        ],
        's' => &[
            "     ", "     ", " ####", "#    ", " ### ", "    #", "#### ",
        ],
        't' => &[
            " #   ", " #   ", "###  ", " #   ", " #   ", " #  #", "  ## ",
        ],
        'u' => &[
            "     ", "     ", "#   #", "#   #", "#   #", "#  ##", " ## #",
        ],
        'v' => &[
            "     ", "     ", "#   #", "#   #", "#   #", " # # ", "  #  ",
        ],
        'w' => &[
            "     ", "     ", "#   #", "#   #", "# # #", "# # #", " # # ",
        ],
        'x' => &[
            "     ", "     ", "#   #", " # # ", "  #  ", " # # ", "#   #",
        ],
        'y' => &[
            "     ", "     ", "#   #", "#   #", "#   #", "#   #", " ####", "    #", " ### ",
        ],
        'z' => &[
            "     ", "     ", "#####", "   # ", "  #  ", " #   ", "#####",
        ],
        '.' => &[
            "     ", "     ", "     ", "     ", "     ", " ##  ", " ##  ",
        ],
        ',' => &[
            "     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   ",
        ],
        '-' => &[
            "     ", "     ", "     ", "#####", "     ", "     ", "     ",
        ],
        '+' => &[
            "     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     ",
        ],
        '(' => &[
            "   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # ",
        ],
        ')' => &[
            " #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   ",
        ],
        '/' => &[
            "     ", "    #", "   # ", "  #  ", " #   ", "#    ", "     ",
        ],
        ':' => &[
            "     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     ",
        ],
        '%' => &[
            "##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##",
        ],
        '^' => &[
            "  #  ", " # # ", "#   #", "     ", "     ", "     ", "     ",
        ],
        '=' => &[
            "     ", "     ", "#####", "     ", "#####", "     ", "     ",
        ],
        '_' => &[
            "     ", "     ", "     ", "     ", "     ", "     ", "#####",
        ],
        _ => &[
            "#####", "#   #", "#   #", "#   #", "#   #", "#   #", "#####",
        ],
    }
}

/// "Nice" tick positions (1, 2 or 5 × 10ᵏ apart) covering `lo..=hi`, about `target` of them.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if !span.is_finite() || span <= 0.0 {
        return (vec![lo], 1.0);
    }
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    (ticks, step)
}

/// A tick label for `v` on an axis whose ticks are `step` apart.
pub fn tick_label(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    let mag = step.abs().log10().floor();
    if (-4.0..6.0).contains(&mag) && v.abs() < 1e7 {
        let decimals = (-mag).max(0.0) as usize;
        format!("{v:.decimals$}")
    } else {
        let s = format!("{v:.1e}");
        s.replace(".0e", "e")
    }
}

/// One curve: a colour, a legend label and its values.
struct Series<'a> {
    label: &'a str,
    color: Rgb,
    y: Vec<f64>,
}

/// A value range padded by 5 %; a constant (or empty) series gets a small range around it.
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (-1.0, 1.0);
    }
    let span = hi - lo;
    if span <= 1e-12 * lo.abs().max(hi.abs()) || span == 0.0 {
        let half = (0.05 * lo.abs()).max(1e-6);
        return (lo - half, hi + half);
    }
    (lo - 0.05 * span, hi + 0.05 * span)
}

/// Draws one panel: grid, axes, tick labels, curves and a legend; returns the y range used.
fn draw_panel(
    img: &mut Image,
    p: &Panel,
    title: &str,
    t: &[f64],
    (tlo, thi): (f64, f64),
    series: &[Series<'_>],
) -> (f64, f64) {
    let (ylo, yhi) = padded_range(series.iter().flat_map(|s| s.y.iter().copied()));
    let (w, h) = ((p.x1 - p.x0) as f64, (p.y1 - p.y0) as f64);
    let px = |x: f64| p.x0 as f64 + (x - tlo) / (thi - tlo) * w;
    let py = |y: f64| p.y1 as f64 - (y - ylo) / (yhi - ylo) * h;

    let (yticks, ystep) = nice_ticks(ylo, yhi, 5);
    for &v in &yticks {
        let y = py(v).round() as usize;
        img.hline(p.x0, p.x1, y, GRID);
        img.hline(p.x0 - 5, p.x0, y, AXIS);
        let label = tick_label(v, ystep);
        let scale = if text_width(&label, 2) + 12 <= p.x0 {
            2
        } else {
            1
        };
        let lw = text_width(&label, scale);
        img.text(
            p.x0.saturating_sub(8 + lw),
            y.saturating_sub(7 * scale / 2),
            &label,
            scale,
            TEXT,
        );
    }
    let (tticks, tstep) = nice_ticks(tlo, thi, 8);
    for &v in &tticks {
        let x = px(v).round() as usize;
        img.vline(x, p.y0, p.y1, GRID);
        img.vline(x, p.y1, p.y1 + 5, AXIS);
        let label = tick_label(v, tstep);
        let lw = text_width(&label, 2);
        img.text(x.saturating_sub(lw / 2), p.y1 + 9, &label, 2, TEXT);
    }
    // Frame.
    img.hline(p.x0, p.x1, p.y0, AXIS);
    img.hline(p.x0, p.x1, p.y1, AXIS);
    img.vline(p.x0, p.y0, p.y1, AXIS);
    img.vline(p.x1, p.y0, p.y1, AXIS);
    img.text(p.x0, p.y0 - 24, title, 2, TEXT);

    let inner = Panel {
        x0: p.x0 + 1,
        x1: p.x1 - 1,
        y0: p.y0 + 1,
        y1: p.y1 - 1,
    };
    for s in series {
        let pts: Vec<Option<(i64, i64)>> = t
            .iter()
            .zip(&s.y)
            .map(|(&x, &y)| {
                (x.is_finite() && y.is_finite())
                    .then(|| (px(x).round() as i64, py(y).round() as i64))
            })
            .collect();
        if pts.len() == 1 {
            if let Some((x, y)) = pts[0] {
                for d in -2..=2 {
                    img.line((x - 2, y + d), (x + 2, y + d), s.color, &inner);
                }
            }
        }
        for w in pts.windows(2) {
            if let (Some(a), Some(b)) = (w[0], w[1]) {
                img.line(a, b, s.color, &inner);
            }
        }
    }

    // Legend, right-aligned above the panel.
    let mut x = p.x1;
    for s in series.iter().rev() {
        let lw = text_width(s.label, 2);
        x = x.saturating_sub(lw);
        img.text(x, p.y0 - 24, s.label, 2, TEXT);
        x = x.saturating_sub(26);
        img.fill(x, p.y0 - 18, 20, 4, s.color);
        x = x.saturating_sub(18);
    }
    (ylo, yhi)
}

/// Renders the two-panel thermo figure.
pub fn render(rows: &[ThermoRow]) -> Image {
    let mut img = Image::new(WIDTH, HEIGHT, BACKGROUND);
    let t: Vec<f64> = rows.iter().map(|r| r.time / 1000.0).collect();
    let (mut tlo, mut thi) = (
        t.iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f64::INFINITY, f64::min),
        t.iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f64::NEG_INFINITY, f64::max),
    );
    if !tlo.is_finite() {
        (tlo, thi) = (0.0, 1.0);
    } else if thi <= tlo {
        let half = (tlo.abs() * 0.05).max(1e-3);
        (tlo, thi) = (tlo - half, thi + half);
    }
    let rel = |f: fn(&ThermoRow) -> f64| -> Vec<f64> {
        let first = rows.first().map(f).unwrap_or(0.0);
        rows.iter().map(|r| f(r) - first).collect()
    };
    let energies = [
        Series {
            label: "PE",
            color: PE_COLOR,
            y: rel(|r| r.pe),
        },
        Series {
            label: "KE",
            color: KE_COLOR,
            y: rel(|r| r.ke),
        },
        Series {
            label: "Conserved",
            color: CONSERVED_COLOR,
            y: rel(|r| r.conserved),
        },
    ];
    draw_panel(
        &mut img,
        &ENERGY_PANEL,
        "Energy - initial value (eV)",
        &t,
        (tlo, thi),
        &energies,
    );
    let temps = [Series {
        label: "T",
        color: TEMPERATURE_COLOR,
        y: rows.iter().map(|r| r.temperature).collect(),
    }];
    draw_panel(
        &mut img,
        &TEMPERATURE_PANEL,
        "Temperature (K)",
        &t,
        (tlo, thi),
        &temps,
    );
    let xlabel = "Time (ps)";
    let lw = text_width(xlabel, 2);
    let p = &TEMPERATURE_PANEL;
    img.text(
        (p.x0 + p.x1) / 2 - lw / 2,
        HEIGHT - 2 * GLYPH_ROWS - 12,
        xlabel,
        2,
        TEXT,
    );
    img
}

/// Writes the thermo figure of `rows` to `path` as a PNG, atomically.
pub fn thermo_png(rows: &[ThermoRow], path: &Path) -> Result<(), MdError> {
    let bytes = render(rows)
        .to_png()
        .map_err(|e| MdError::io(path, std::io::Error::other(e)))?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to a temporary file next to `path`, syncs it and renames it over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MdError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plot.png".into());
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        MdError::io(path, e)
    })
}
