//! Helpers shared by the readers and writers: numbered lines, number parsing with located
//! errors, and exact float formatting.

use crate::IoError;

/// A cursor over the lines of a file that remembers where it is, for error messages.
pub(crate) struct Lines<'a> {
    pub name: &'a str,
    lines: std::str::Lines<'a>,
    /// 1-based number of the last line handed out (0 before the first).
    pub last: usize,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str, name: &'a str) -> Self {
        Lines {
            name,
            lines: text.lines(),
            last: 0,
        }
    }

    /// The next line and its 1-based number.
    pub fn next_line(&mut self) -> Option<(usize, &'a str)> {
        let line = self.lines.next()?;
        self.last += 1;
        Some((self.last, line))
    }

    /// The next line, or an error saying the file ended where `what` was expected.
    pub fn expect(&mut self, what: &str) -> Result<(usize, &'a str), IoError> {
        match self.next_line() {
            Some(l) => Ok(l),
            None => Err(self.eof(what)),
        }
    }

    /// The error for a file that ends where `what` was expected (on the line after the last).
    pub fn eof(&self, what: &str) -> IoError {
        IoError::at(
            self.name,
            self.last + 1,
            format!("unexpected end of file: expected {what}"),
        )
    }

    pub fn err(&self, line: usize, msg: impl Into<String>) -> IoError {
        IoError::at(self.name, line, msg)
    }
}

/// A token for an error message: quoted, and shortened if long (input may be arbitrary).
pub(crate) fn show(tok: &str) -> String {
    const MAX: usize = 40;
    match tok.char_indices().nth(MAX) {
        Some((cut, _)) => format!("`{}…`", &tok[..cut]),
        None => format!("`{tok}`"),
    }
}

/// Parses a finite real, or explains what was wrong with `tok` as `what`.
pub(crate) fn finite(tok: &str, what: &str) -> Result<f64, String> {
    match tok.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err(format!("{what} is {}, expected a finite number", show(tok))),
        Err(_) => Err(format!("expected a number for {what}, found {}", show(tok))),
    }
}

/// Parses three finite reals from `toks[..3]` (the caller checked there are three).
pub(crate) fn finite3(toks: &[&str], what: &str) -> Result<[f64; 3], String> {
    Ok([
        finite(toks[0], what)?,
        finite(toks[1], what)?,
        finite(toks[2], what)?,
    ])
}

/// Formats as the shortest decimal text that parses back to exactly the same f64
/// (Rust's `Debug` for floats), without allocating; honours width and alignment.
#[derive(Clone, Copy)]
pub(crate) struct Exact(pub f64);

impl std::fmt::Display for Exact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

/// Exact decimal text of `x · 10^shift`: the shortest digits of `x` with the exponent moved,
/// so that [`parse_scaled`] with `-shift` gives back `x` bit for bit.
pub(crate) fn fmt_scaled(x: f64, shift: i32) -> String {
    let s = format!("{x:e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            // `{:e}` always prints an integer exponent that fits i32 for finite f64.
            let exp: i32 = exp.parse().unwrap_or(0);
            format!("{mantissa}e{}", exp + shift)
        }
        None => s,
    }
}

/// Parses `tok · 10^shift` with a single rounding (the exponent is shifted in the text), so
/// decimal unit conversions such as Å/ps → Å/fs are exact; must be finite.
pub(crate) fn parse_scaled(tok: &str, shift: i32, what: &str) -> Result<f64, String> {
    finite(tok, what)?;
    let (mantissa, exp) = match tok.find(['e', 'E']) {
        Some(i) => (&tok[..i], tok[i + 1..].parse::<i64>().unwrap_or(0)),
        None => (tok, 0),
    };
    let shifted = format!("{mantissa}e{}", exp.saturating_add(i64::from(shift)));
    finite(&shifted, what).map_err(|_| format!("{what} {} is out of range", show(tok)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_text_is_exact() {
        for x in [
            0.1,
            -1.5e-4,
            3.0,
            0.0,
            -0.0,
            1e-300,
            2.5e300,
            0.15416735297192832,
        ] {
            let t = fmt_scaled(x, 3);
            let back = parse_scaled(&t, -3, "v").unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{x} -> {t} -> {back}");
        }
        assert_eq!(fmt_scaled(0.00015, 3), "1.5e-1");
        assert_eq!(parse_scaled("150", -3, "v").unwrap(), 0.15);
        assert_eq!(parse_scaled("1.5E+2", -3, "v").unwrap(), 0.15);
        assert!(parse_scaled("nan", -3, "v").is_err());
        assert!(parse_scaled("1e400", 0, "v").is_err());
        assert!(parse_scaled("x", 0, "v").unwrap_err().contains("`x`"));
    }

    #[test]
    fn floats_print_shortest_and_exact() {
        for x in [0.1, 1e-7, 1e16, -0.0, 5e-324, f64::MAX, 1.0 / 3.0] {
            let s = Exact(x).to_string();
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), x.to_bits());
        }
        assert_eq!(Exact(1.0).to_string(), "1.0");
        assert_eq!(format!("[{:>5}]", Exact(0.5)), "[  0.5]");
    }

    #[test]
    fn long_tokens_are_shortened() {
        let long = "é".repeat(100);
        let s = show(&long);
        assert!(s.chars().count() < 50 && s.ends_with("…`"));
        assert_eq!(show("ab"), "`ab`");
    }
}
