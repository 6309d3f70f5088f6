//! The readers survive arbitrary input: every outcome is `Ok` or an `IoError`, never a panic.

use std::path::Path;

use halo_io::{read_str, Format};
use proptest::prelude::*;

const FORMATS: [Format; 3] = [Format::ExtXyz, Format::LammpsData, Format::Poscar];

/// Feeds `text` to every reader; errors must name the file and a plausible line.
fn survive(text: &str) {
    let nlines = text.lines().count();
    for format in FORMATS {
        if let Err(e) = read_str(text, format, "fuzz") {
            assert_eq!(e.path, Path::new("fuzz"));
            if let Some(line) = e.line {
                assert!(
                    (1..=nlines + 1).contains(&line),
                    "line {line} of {nlines}: {e}"
                );
            }
        }
    }
}

fn fixtures() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut texts: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| Format::from_path(p).is_some())
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    texts.sort();
    assert!(texts.len() >= 9);
    texts
}

/// Fragments that steer mutations into the readers' interesting branches.
const TOKENS: [&str; 28] = [
    "\n",
    " ",
    "\t",
    "nan",
    "-inf",
    "1e999",
    "-1",
    "0",
    "18446744073709551617",
    "4294967296",
    "#",
    "\"",
    "'",
    "{",
    "=",
    ":",
    "T",
    "Xx",
    "Atoms",
    "Velocities",
    "Masses",
    "Selective",
    "Cartesian",
    "Lattice=\"",
    ":R:0",
    "xy xz yz",
    "\u{e9}",
    "\r\n",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, &'static str),
    Truncate(usize),
    DuplicateLine(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..20).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), prop::sample::select(TOKENS.to_vec()))
            .prop_map(|(at, t)| Edit::Insert(at, t)),
        any::<usize>().prop_map(Edit::Truncate),
        any::<usize>().prop_map(Edit::DuplicateLine),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let len = chars.len().max(1);
        match *e {
            Edit::Delete(at, n) => {
                let at = at % len;
                chars.drain(at.min(chars.len())..(at + n).min(chars.len()));
            }
            Edit::Insert(at, t) => {
                let at = at % (chars.len() + 1);
                chars.splice(at..at, t.chars());
            }
            Edit::Truncate(at) => chars.truncate(at % len),
            Edit::DuplicateLine(k) => {
                let s: String = chars.iter().collect();
                let mut lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let k = k % lines.len();
                    lines.insert(k, lines[k]);
                }
                chars = (lines.join("\n") + "\n").chars().collect();
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        survive(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_lines(lines in prop::collection::vec("[ -~]{0,40}", 0..40)) {
        survive(&lines.join("\n"));
    }

    #[test]
    fn mutated_fixtures(
        text in prop::sample::select(fixtures()),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        survive(&apply(&text, &edits));
    }
}

#[test]
fn huge_counts_are_errors_not_allocations() {
    let xyz = "18446744073709551615\nProperties=species:S:1:pos:R:3\nH 0 0 0\n";
    let e = read_str(xyz, Format::ExtXyz, "x").unwrap_err();
    assert_eq!(e.line, Some(4), "{e}");
    let wide = "1000000\nProperties=species:S:1:pos:R:3:f:R:18446744073709551613\nH 0 0 0\n";
    let e = read_str(wide, Format::ExtXyz, "x").unwrap_err();
    assert!(e.message.contains("overflow"), "{e}");
    let wide = "1000000\nProperties=species:S:1:pos:R:3:f:R:4294967296:g:I:4294967296\nH 0 0 0\n";
    let e = read_str(wide, Format::ExtXyz, "x").unwrap_err();
    assert!(e.message.contains("expected 8589934596 columns"), "{e}");
    let data = "t\n\n4000000000 atoms\n1 atom types\n";
    let e = read_str(data, Format::LammpsData, "x").unwrap_err();
    assert!(e.message.contains("only 4 lines"), "{e}");
    let data = "t\n\n1 atoms\n4000000000 atom types\n";
    let e = read_str(data, Format::LammpsData, "x").unwrap_err();
    assert!(e.message.contains("only 4 lines"), "{e}");
    let poscar = "c\n1\n1 0 0\n0 1 0\n0 0 1\nH He\n18446744073709551615 1\nDirect\n";
    let e = read_str(poscar, Format::Poscar, "x").unwrap_err();
    assert_eq!(e.line, Some(7), "{e}");
}
