//! The `halomd run` input file: a full example, defaults, and every class of error.

use std::path::{Path, PathBuf};

use halo_md::dynamics::Couple;
use halo_md::input::{Ensemble, InitVelocities, Input, Task};
use halo_md::output::traj::TrajFormat;
use halo_md::progress::ProgressMode;
use halo_md::MdError;

const FILE: &str = "runs/run.toml";

fn parse(text: &str) -> Result<Input, MdError> {
    Input::parse(text, Path::new(FILE))
}

/// The error message of an input that must fail.
fn error(text: &str) -> String {
    match parse(text) {
        Ok(input) => panic!("accepted invalid input:\n{text}\nparsed: {input:#?}"),
        Err(MdError::Input(msg)) => msg,
        Err(other) => panic!("wrong error kind: {other:?}"),
    }
}

/// Asserts that the message contains `needle`, showing both on failure.
#[track_caller]
fn assert_has(msg: &str, needle: &str) {
    assert!(
        msg.contains(needle),
        "expected {needle:?} in the error message:\n{msg}"
    );
}

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

const MINIMAL_NVE: &str = r#"
structure = "cu.xyz"
model = "cu.dp"
[md]
ensemble = "nve"
steps = 10
"#;

#[test]
fn full_example_parses_to_the_expected_values() {
    let text = r#"
# Copper NPT
structure = "data/cu256.xyz"

[model]
file = "/models/cu.dp"
head = "Cu_head"
null_types = ["He"]
fparam = [0.5, 2]

[md]
ensemble = "npt"
timestep = 2.0
steps = 1_000_000
temperature = 300
tdamp = 150.5
pressure = -1.5
pdamp = 2500
barostat = "tri"
chain = 5
seed = 42
skin = 0.5
init_temperature = 600

[output]
thermo_every = 20
thermo = "out/thermo.txt"
thermo_csv = false
trajectory = "out/traj.lammpstrj"
trajectory_every = 50
checkpoint = "out/restart.chk"
checkpoint_every = 5000
plot = "out/plot.png"
progress = "never"

[parallel]
ranks = 8
grid = [2, 2, 2]
comm = "shm"
"#;
    let input = parse(text).unwrap();
    assert_eq!(input.path, p(FILE));
    assert_eq!(input.structure, p("runs/data/cu256.xyz"));
    assert_eq!(input.structure_format, None);
    assert_eq!(input.model.path, p("/models/cu.dp"));
    assert_eq!(input.model.head.as_deref(), Some("Cu_head"));
    assert_eq!(input.model.null_types, vec!["He".to_string()]);
    assert_eq!(input.model.fparam, Some(vec![0.5, 2.0]));
    let Task::Md(md) = &input.task else {
        panic!("expected an MD task, got {:?}", input.task)
    };
    assert_eq!(md.steps, 1_000_000);
    assert_eq!(md.timestep, 2.0);
    assert_eq!(md.seed, 42);
    assert_eq!(md.skin, 0.5);
    assert_eq!(md.velocities, InitVelocities::Temperature(600.0));
    assert_eq!(
        md.ensemble,
        Ensemble::Npt {
            temperature: 300.0,
            tdamp: 150.5,
            pressure: -1.5,
            pdamp: 2500.0,
            couple: Couple::Tri,
            chain: 5
        }
    );
    let out = &input.output;
    assert_eq!(out.thermo_every, 20);
    assert_eq!(out.thermo, Some(p("runs/out/thermo.txt")));
    assert_eq!(out.thermo_csv, None);
    assert_eq!(out.trajectory, Some(p("runs/out/traj.lammpstrj")));
    assert_eq!(out.trajectory_every, 50);
    assert_eq!(out.trajectory_format, TrajFormat::LammpsDump);
    assert_eq!(out.checkpoint, Some(p("runs/out/restart.chk")));
    assert_eq!(out.checkpoint_every, 5000);
    assert_eq!(out.plot, Some(p("runs/out/plot.png")));
    assert_eq!(out.progress, ProgressMode::Never);
    assert_eq!(input.parallel.ranks, Some(8));
    assert_eq!(input.parallel.grid, Some([2, 2, 2]));
    assert_eq!(input.parallel.comm, "shm");
}

#[test]
fn defaults_of_a_minimal_nve_input() {
    let input = parse(MINIMAL_NVE).unwrap();
    assert_eq!(input.structure, p("runs/cu.xyz"));
    assert_eq!(input.model.path, p("runs/cu.dp"));
    assert_eq!(input.model.head, None);
    assert!(input.model.null_types.is_empty());
    assert_eq!(input.model.fparam, None);
    let Task::Md(md) = &input.task else {
        panic!("expected MD")
    };
    assert_eq!(md.ensemble, Ensemble::Nve);
    assert_eq!(md.steps, 10);
    assert_eq!(md.timestep, 1.0);
    assert_eq!(md.seed, 0);
    assert_eq!(md.skin, 1.0);
    assert_eq!(md.velocities, InitVelocities::Auto);
    // NVE has no temperature: structure velocities if any, else rest.
    assert_eq!(md.initial_velocities(true), InitVelocities::FromStructure);
    assert_eq!(md.initial_velocities(false), InitVelocities::Zero);
    let out = &input.output;
    assert_eq!(out.thermo_every, 10);
    assert_eq!(out.thermo, Some(p("runs/thermo.log")));
    assert_eq!(out.thermo_csv, Some(p("runs/thermo.csv")));
    assert_eq!(out.trajectory, Some(p("runs/traj.xyz")));
    assert_eq!(out.trajectory_every, 100);
    assert_eq!(out.trajectory_format, TrajFormat::Extxyz);
    assert_eq!(out.checkpoint, Some(p("runs/run.chk")));
    assert_eq!(out.checkpoint_every, 1000);
    assert_eq!(out.plot, None);
    assert_eq!(out.progress, ProgressMode::Auto);
    assert_eq!(input.parallel.ranks, None);
    assert_eq!(input.parallel.grid, None);
    assert_eq!(input.parallel.comm, "threads");
}

#[test]
fn nvt_defaults_to_langevin_with_tdamp_of_100_timesteps() {
    let text = r#"
structure = "s.xyz"
model = "m.dp"
[md]
ensemble = "nvt"
timestep = 0.5
steps = 100
temperature = 500.0
"#;
    let Task::Md(md) = parse(text).unwrap().task else {
        panic!("expected MD")
    };
    assert_eq!(
        md.ensemble,
        Ensemble::Langevin {
            temperature: 500.0,
            damping: 50.0
        }
    );
    // A thermostatted run without velocities starts from Maxwell–Boltzmann at T.
    assert_eq!(
        md.initial_velocities(false),
        InitVelocities::Temperature(500.0)
    );
    assert_eq!(md.initial_velocities(true), InitVelocities::FromStructure);
}

#[test]
fn nose_hoover_and_npt_defaults() {
    let nh = r#"
structure = "s.xyz"
model = "m.dp"
[md]
ensemble = "nvt"
thermostat = "nose-hoover"
steps = 100
temperature = 300
"#;
    let Task::Md(md) = parse(nh).unwrap().task else {
        panic!("expected MD")
    };
    assert_eq!(
        md.ensemble,
        Ensemble::NoseHoover {
            temperature: 300.0,
            tdamp: 100.0,
            chain: 3
        }
    );
    let npt = r#"
structure = "s.xyz"
model = "m.dp"
[md]
ensemble = "npt"
timestep = 2
steps = 100
temperature = 300
pressure = 1.01325
velocities = "zero"
"#;
    let Task::Md(md) = parse(npt).unwrap().task else {
        panic!("expected MD")
    };
    assert_eq!(
        md.ensemble,
        Ensemble::Npt {
            temperature: 300.0,
            tdamp: 200.0,
            pressure: 1.01325,
            pdamp: 2000.0,
            couple: Couple::Iso,
            chain: 3
        }
    );
    assert_eq!(md.velocities, InitVelocities::Zero);
    assert_eq!(md.initial_velocities(true), InitVelocities::Zero);
}

#[test]
fn minimize_section_and_its_defaults() {
    let text = r#"
[structure]
file = "POSCAR_in"
format = "poscar"
[model]
file = "m.dp"
[minimize]
"#;
    let input = parse(text).unwrap();
    assert_eq!(input.structure, p("runs/POSCAR_in"));
    assert_eq!(input.structure_format, Some(halo_io::Format::Poscar));
    let Task::Minimize(min) = &input.task else {
        panic!("expected minimize")
    };
    assert_eq!(min.fmax, 0.01);
    assert_eq!(min.steps, 1000);
    assert_eq!(min.maxstep, 0.2);
    assert!(!min.cell);
    assert_eq!(min.pressure, 0.0);
    assert_eq!(min.skin, 1.0);

    let cell = r#"
structure = "s.xyz"
model = "m.dp"
[minimize]
fmax = 0.001
steps = 5e3
maxstep = 0.1
cell = true
pressure = 1000
skin = 0
"#;
    let Task::Minimize(min) = parse(cell).unwrap().task else {
        panic!("expected minimize")
    };
    assert_eq!(min.fmax, 0.001);
    assert_eq!(min.steps, 5000);
    assert_eq!(min.maxstep, 0.1);
    assert!(min.cell);
    assert_eq!(min.pressure, 1000.0);
    assert_eq!(min.skin, 0.0);
}

#[test]
fn relative_paths_resolve_against_the_input_directory() {
    let text = r#"
structure = "../shared/cu.xyz"
model = "/abs/cu.dp"
[md]
ensemble = "nve"
steps = 1
[output]
trajectory = "sub/t.extxyz"
plot = true
"#;
    let input = Input::parse(text, Path::new("/home/u/job/run.toml")).unwrap();
    assert_eq!(input.structure, p("/home/u/job/../shared/cu.xyz"));
    assert_eq!(input.model.path, p("/abs/cu.dp"));
    assert_eq!(input.output.trajectory, Some(p("/home/u/job/sub/t.extxyz")));
    assert_eq!(input.output.trajectory_format, TrajFormat::Extxyz);
    assert_eq!(input.output.plot, Some(p("/home/u/job/thermo.png")));
    assert_eq!(input.output.thermo, Some(p("/home/u/job/thermo.log")));

    // A bare file name: paths stay relative to the working directory.
    let input = Input::parse(text, Path::new("run.toml")).unwrap();
    assert_eq!(input.structure, p("../shared/cu.xyz"));
    assert_eq!(input.output.checkpoint, Some(p("run.chk")));
}

#[test]
fn from_file_reads_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.toml");
    std::fs::write(&path, MINIMAL_NVE).unwrap();
    let input = Input::from_file(&path).unwrap();
    assert_eq!(input.structure, dir.path().join("cu.xyz"));
    assert_eq!(input.path, path);

    let missing = dir.path().join("nope.toml");
    match Input::from_file(&missing) {
        Err(MdError::Io { path, .. }) => assert!(path.contains("nope.toml")),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

// ---- errors ----------------------------------------------------------------------------

#[test]
fn unknown_key_names_file_line_key_and_suggestion() {
    let msg = error(
        r#"structure = "s.xyz"
model = "m.dp"

[md]
ensemble = "nvt"
steps = 10
temprature = 300
"#,
    );
    assert_has(
        &msg,
        "runs/run.toml:7: md.temprature: unknown key; did you mean `temperature`?",
    );
    // The missing temperature is reported too, at the [md] header.
    assert_has(
        &msg,
        "runs/run.toml:4: md.temperature: missing required key in [md]",
    );
}

#[test]
fn key_in_the_wrong_section_says_where_it_belongs() {
    let msg = error(
        r#"structure = "s.xyz"
model = "m.dp"
[md]
ensemble = "nve"
steps = 10
thermo_every = 5
"#,
    );
    assert_has(
        &msg,
        "runs/run.toml:6: md.thermo_every: unknown key in [md]; `thermo_every` belongs in [output]",
    );
    let msg = error(
        r#"structure = "s.xyz"
model = "m.dp"
steps = 3
[md]
ensemble = "nve"
steps = 10
"#,
    );
    assert_has(
        &msg,
        "runs/run.toml:3: steps: unknown key at the top level; `steps` belongs in [md] or [minimize]",
    );
}

#[test]
fn unknown_key_without_a_near_name_lists_the_valid_keys() {
    let msg = error(&format!("{MINIMAL_NVE}[parallel]\nxyzzy = 1\n"));
    assert_has(
        &msg,
        "parallel.xyzzy: unknown key in [parallel] (valid keys: ranks, grid, comm)",
    );
    let msg = error(&format!("{MINIMAL_NVE}[outptu]\nthermo_every = 1\n"));
    assert_has(&msg, ":7: outptu: unknown key; did you mean `output`?");
}

#[test]
fn wrong_types_are_named() {
    let msg = error(
        r#"structure = 3
model = "m.dp"
[md]
ensemble = "nve"
steps = "ten"
timestep = true
seed = 1.5
"#,
    );
    assert_has(
        &msg,
        "runs/run.toml:1: structure: expected a file name or a [structure] table, found integer 3",
    );
    assert_has(
        &msg,
        "runs/run.toml:5: md.steps: expected a whole number, found string \"ten\"",
    );
    assert_has(
        &msg,
        "runs/run.toml:6: md.timestep: expected a number, found boolean true",
    );
    assert_has(
        &msg,
        "runs/run.toml:7: md.seed: expected a whole number, found float 1.5",
    );
    // All problems come back at once, top to bottom.
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(lines.len(), 4, "{msg}");
    assert!(lines[0].starts_with("runs/run.toml:1:"), "{msg}");
    assert!(lines[3].starts_with("runs/run.toml:7:"), "{msg}");

    let msg = error(&format!("{MINIMAL_NVE}[output]\nthermo = 5\n"));
    assert_has(
        &msg,
        ":8: output.thermo: expected a file name, true or false, found integer 5",
    );
    let msg = error(
        r#"model = "m.dp"
structure = "s.xyz"
md = "nve"
"#,
    );
    assert_has(&msg, ":3: md: expected a [md] table, found string \"nve\"");
}

#[test]
fn bad_timestep_is_rejected() {
    for (value, shown) in [("0", "0"), ("-1.0", "-1"), ("nan", "NaN"), ("inf", "inf")] {
        let text = format!(
            "structure = \"s.xyz\"\nmodel = \"m.dp\"\n[md]\nensemble = \"nve\"\nsteps = 1\ntimestep = {value}\n"
        );
        let msg = error(&text);
        assert_has(&msg, "runs/run.toml:6: md.timestep: ");
        assert_has(&msg, shown);
    }
    let msg = error(
        "structure = \"s.xyz\"\nmodel = \"m.dp\"\n[md]\nensemble = \"nve\"\nsteps = 1\ntimestep = -0.5\n",
    );
    assert_has(&msg, "md.timestep: must be > 0 fs, found -0.5");
}

#[test]
fn missing_required_keys() {
    let msg = error("[md]\nsteps = 1\n");
    assert_has(&msg, "runs/run.toml: structure: missing required key");
    assert_has(&msg, "runs/run.toml: model: missing required key");
    assert_has(
        &msg,
        "runs/run.toml:1: md.ensemble: missing required key in [md]",
    );

    let msg = error("structure = \"s.xyz\"\n[model]\nhead = \"x\"\n[md]\nensemble = \"nve\"\n");
    assert_has(
        &msg,
        "runs/run.toml:2: model.file: missing required key in [model]",
    );
    assert_has(
        &msg,
        "runs/run.toml:4: md.steps: missing required key in [md]",
    );

    let msg = error("structure = \"s.xyz\"\nmodel = \"m.dp\"\n");
    assert_has(
        &msg,
        "runs/run.toml: md: missing [md] section (or [minimize] for an energy minimisation)",
    );

    let msg = error(
        "structure = \"s.xyz\"\nmodel = \"m.dp\"\n[md]\nensemble = \"npt\"\nsteps = 1\ntemperature = 300\n",
    );
    assert_has(
        &msg,
        "runs/run.toml:3: md.pressure: missing required key in [md]",
    );

    let msg = error("structure = \"s.xyz\"\nmodel = \"m.dp\"\n[md]\nensemble = \"nve\"\nsteps = 1\n[minimize]\n");
    assert_has(
        &msg,
        "runs/run.toml:6: minimize: give either [md] or [minimize], not both",
    );
}

#[test]
fn values_out_of_range() {
    let base = "structure = \"s.xyz\"\nmodel = \"m.dp\"\n[md]\n"; // [md] on line 3
    let cases = [
        (
            "ensemble = \"nvt\"\nsteps = 1\ntemperature = 0\n",
            "runs/run.toml:6: md.temperature: must be > 0 K for a thermostat, found 0",
        ),
        (
            "ensemble = \"nvt\"\nsteps = 1\ntemperature = 300\ntdamp = -5\n",
            "runs/run.toml:7: md.tdamp: must be > 0 fs, found -5",
        ),
        (
            "ensemble = \"npt\"\nsteps = 1\ntemperature = 300\npressure = 0\npdamp = 0\n",
            "runs/run.toml:8: md.pdamp: must be > 0 fs, found 0",
        ),
        (
            "ensemble = \"nvt\"\nthermostat = \"nose-hoover\"\nsteps = 1\ntemperature = 300\nchain = 0\n",
            "runs/run.toml:8: md.chain: must be at least 1, found 0",
        ),
        (
            "ensemble = \"nve\"\nsteps = 1\nskin = -0.1\n",
            "runs/run.toml:6: md.skin: must be ≥ 0 Å, found -0.1",
        ),
        (
            "ensemble = \"nve\"\nsteps = 0\n",
            "runs/run.toml:5: md.steps: must be at least 1, found 0",
        ),
        (
            "ensemble = \"nve\"\nsteps = -3\n",
            "runs/run.toml:5: md.steps: must not be negative, found -3",
        ),
        (
            "ensemble = \"nve\"\nsteps = 1\nseed = -1\n",
            "runs/run.toml:6: md.seed: must not be negative, found -1",
        ),
        (
            "ensemble = \"nve\"\nsteps = 1\ninit_temperature = -10\n",
            "runs/run.toml:6: md.init_temperature: must be > 0 K, found -10",
        ),
    ];
    for (body, expected) in cases {
        assert_has(&error(&format!("{base}{body}")), expected);
    }
    let out = [
        (
            "thermo_every = 0",
            "output.thermo_every: must be at least 1, found 0",
        ),
        (
            "trajectory_every = 0",
            "output.trajectory_every: must be at least 1, found 0",
        ),
        (
            "checkpoint_every = 0",
            "output.checkpoint_every: must be at least 1, found 0",
        ),
    ];
    for (line, expected) in out {
        let msg = error(&format!("{MINIMAL_NVE}[output]\n{line}\n"));
        assert_has(&msg, &format!("runs/run.toml:8: {expected}"));
    }
    let min = [
        ("fmax = 0", "minimize.fmax: must be > 0 eV/Å, found 0"),
        ("maxstep = -1", "minimize.maxstep: must be > 0 Å, found -1"),
        ("steps = 0", "minimize.steps: must be at least 1, found 0"),
        ("skin = -1", "minimize.skin: must be ≥ 0 Å, found -1"),
    ];
    for (line, expected) in min {
        let msg = error(&format!(
            "structure = \"s.xyz\"\nmodel = \"m.dp\"\n[minimize]\n{line}\n"
        ));
        assert_has(&msg, &format!("runs/run.toml:4: {expected}"));
    }
}

#[test]
fn parallel_grid_and_ranks() {
    let cases = [
        ("grid = [2, 0, 1]", "parallel.grid: every entry must be at least 1"),
        ("grid = [2, 2]", "parallel.grid: expected three numbers [px, py, pz], found 2"),
        ("ranks = 0", "parallel.ranks: must be at least 1, found 0"),
        (
            "ranks = 4\ngrid = [2, 2, 2]",
            "parallel.grid: 2×2×2 = 8 domains, but parallel.ranks = 4",
        ),
        (
            "comm = \"mpii\"",
            "parallel.comm: unknown value \"mpii\"; did you mean \"mpi\"? (expected one of \"threads\", \"shm\", \"mpi\")",
        ),
    ];
    for (body, expected) in cases {
        let msg = error(&format!("{MINIMAL_NVE}[parallel]\n{body}\n"));
        assert_has(&msg, "runs/run.toml:");
        assert_has(&msg, expected);
    }
}

#[test]
fn unknown_names_get_suggestions() {
    let base = "structure = \"s.xyz\"\nmodel = \"m.dp\"\n[md]\nsteps = 1\ntemperature = 300\n";
    let cases = [
        (
            "ensemble = \"NVT\"",
            "runs/run.toml:6: md.ensemble: unknown value \"NVT\"; did you mean \"nvt\"? (expected one of \"nve\", \"nvt\", \"npt\")",
        ),
        (
            "ensemble = \"nvt\"\nthermostat = \"nose_hoover\"",
            "runs/run.toml:7: md.thermostat: unknown value \"nose_hoover\"; did you mean \"nose-hoover\"?",
        ),
        (
            "ensemble = \"npt\"\npressure = 1\nbarostat = \"isotropic\"",
            "runs/run.toml:8: md.barostat: unknown value \"isotropic\"; did you mean \"iso\"?",
        ),
        (
            "ensemble = \"gcmc\"",
            "runs/run.toml:6: md.ensemble: unknown value \"gcmc\" (expected one of \"nve\", \"nvt\", \"npt\")",
        ),
    ];
    for (body, expected) in cases {
        assert_has(&error(&format!("{base}{body}\n")), expected);
    }
    let out = [
        (
            "progress = \"allways\"",
            "output.progress: unknown value \"allways\"; did you mean \"always\"?",
        ),
        (
            "trajectory_format = \"lammps\"",
            "output.trajectory_format: unknown value \"lammps\"; did you mean \"lammps-dump\"?",
        ),
    ];
    for (body, expected) in out {
        assert_has(
            &error(&format!("{MINIMAL_NVE}[output]\n{body}\n")),
            expected,
        );
    }
    let msg = error("[structure]\nfile = \"s\"\nformat = \"poscr\"\n[model]\nfile = \"m\"\n[md]\nensemble = \"nve\"\nsteps = 1\n");
    assert_has(
        &msg,
        "runs/run.toml:3: structure.format: unknown structure format \"poscr\"; did you mean \"poscar\"?",
    );
}

#[test]
fn keys_that_do_not_apply_to_the_ensemble_are_errors() {
    let base = "structure = \"s.xyz\"\nmodel = \"m.dp\"\n[md]\nsteps = 1\n";
    let cases = [
        (
            "ensemble = \"nve\"\ntemperature = 300",
            "runs/run.toml:6: md.temperature: not used with ensemble = \"nve\"; to draw initial velocities use init_temperature",
        ),
        (
            "ensemble = \"nve\"\nthermostat = \"langevin\"",
            "runs/run.toml:6: md.thermostat: not used with ensemble = \"nve\"",
        ),
        (
            "ensemble = \"nvt\"\ntemperature = 300\npressure = 1",
            "runs/run.toml:7: md.pressure: only used with ensemble = \"npt\"",
        ),
        (
            "ensemble = \"nvt\"\ntemperature = 300\nchain = 4",
            "runs/run.toml:7: md.chain: only used by the nose-hoover thermostat (and npt)",
        ),
        (
            "ensemble = \"npt\"\ntemperature = 300\npressure = 1\nthermostat = \"langevin\"",
            "runs/run.toml:8: md.thermostat: npt uses a Nosé–Hoover chain thermostat",
        ),
        (
            "ensemble = \"nve\"\nvelocities = \"zero\"\ninit_temperature = 10",
            "runs/run.toml:6: md.velocities: give either velocities or init_temperature, not both",
        ),
    ];
    for (body, expected) in cases {
        assert_has(&error(&format!("{base}{body}\n")), expected);
    }
    let msg = error("structure = \"s.xyz\"\nmodel = \"m.dp\"\n[minimize]\npressure = 5\n");
    assert_has(
        &msg,
        "runs/run.toml:4: minimize.pressure: only used with cell = true",
    );
}

#[test]
fn output_conflicts_and_unknown_trajectory_extension() {
    let msg = error(&format!("{MINIMAL_NVE}[output]\ntrajectory = \"t.pdb\"\n"));
    assert_has(
        &msg,
        "runs/run.toml:8: output.trajectory: cannot tell the format of \"runs/t.pdb\" from its name",
    );
    // An explicit format makes any name fine.
    let input = parse(&format!(
        "{MINIMAL_NVE}[output]\ntrajectory = \"t.pdb\"\ntrajectory_format = \"lammps-dump\"\n"
    ))
    .unwrap();
    assert_eq!(input.output.trajectory_format, TrajFormat::LammpsDump);

    let msg = error(&format!(
        "{MINIMAL_NVE}[output]\nthermo_csv = \"thermo.log\"\n"
    ));
    assert_has(
        &msg,
        "runs/run.toml: output.thermo_csv: runs/thermo.log is also used by output.thermo",
    );
    let msg = error(&format!("{MINIMAL_NVE}[output]\ntrajectory = \"cu.xyz\"\n"));
    assert_has(
        &msg,
        "runs/run.toml: output.trajectory: runs/cu.xyz would overwrite the structure file",
    );
}

#[test]
fn toml_syntax_errors_name_the_line() {
    let msg = error("structure = \"s.xyz\"\nmodel = \"m.dp\"\n[md\nensemble = \"nve\"\n");
    assert!(msg.starts_with("runs/run.toml:3: "), "{msg}");
    let msg = error("structure = \"s.xyz\"\nstructure = \"t.xyz\"\n");
    assert!(msg.starts_with("runs/run.toml:2: "), "{msg}");
}

#[test]
fn integral_floats_count_as_whole_numbers_and_bad_arrays_are_named() {
    let input =
        parse("structure = \"s.xyz\"\nmodel = \"m.dp\"\n[md]\nensemble = \"nve\"\nsteps = 1e6\n")
            .unwrap();
    let Task::Md(md) = input.task else {
        panic!("expected MD")
    };
    assert_eq!(md.steps, 1_000_000);

    let msg = error(
        "structure = \"s.xyz\"\n[model]\nfile = \"m.dp\"\nnull_types = [\"H\", 1]\nfparam = [1, \"x\"]\n[md]\nensemble = \"nve\"\nsteps = 1\n",
    );
    assert_has(
        &msg,
        "runs/run.toml:4: model.null_types: element 1: expected a string, found integer 1",
    );
    assert_has(
        &msg,
        "runs/run.toml:5: model.fparam: element 1: expected a number, found string \"x\"",
    );
}

// ---- the documentation ----------------------------------------------------------------

fn docs() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/run-input.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The bodies of the fenced blocks of `lang` in the documentation.
fn blocks(doc: &str, lang: &str) -> Vec<String> {
    let open = format!("```{lang}\n");
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let end = body.find("```").expect("unclosed code block");
        out.push(body[..end].to_string());
        rest = &body[end..];
    }
    out
}

#[test]
fn documented_examples_parse() {
    let doc = docs();
    let examples = blocks(&doc, "toml");
    assert_eq!(
        examples.len(),
        2,
        "expected the full and the minimal example"
    );
    let full = Input::parse(&examples[0], Path::new("run.toml")).unwrap();
    assert_eq!(full.structure, p("cu256.xyz"));
    let Task::Md(md) = &full.task else {
        panic!("expected MD")
    };
    assert_eq!(
        md.ensemble,
        Ensemble::Npt {
            temperature: 300.0,
            tdamp: 200.0,
            pressure: 1.01325,
            pdamp: 2000.0,
            couple: Couple::Iso,
            chain: 3
        }
    );
    assert_eq!(md.steps, 50_000);
    assert_eq!(full.parallel.grid, Some([2, 2, 2]));
    assert_eq!(full.output.plot, Some(p("thermo.png")));
    let minimal = Input::parse(&examples[1], Path::new("run.toml")).unwrap();
    assert!(matches!(minimal.task, Task::Md(_)));
}

#[test]
fn documented_error_messages_are_the_real_ones() {
    let text = r#"structure = "cu.xyz"
model = "cu.dp"
[md]
ensemble = "nvt"
steps = 10
temprature = 300
timestep = -1
thermostat = "nose_hoover"
thermo_every = 5
"#;
    let msg = match Input::parse(text, Path::new("run.toml")) {
        Err(MdError::Input(m)) => m,
        other => panic!("expected an input error, got {other:?}"),
    };
    let doc = docs();
    let shown = blocks(&doc, "text");
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].trim_end(), msg);
}
