#!/usr/bin/env bash
# Builds halomd with its `mpi` feature and checks `halomd eval --comm mpi` under mpirun
# (2 and 4 ranks) against `--comm threads` on the same structure: the JSON documents must
# have the same shape and every number must agree to 1e-10 (absolute). No python: numbers
# are pulled out with grep and compared with awk.
#
# Needs an MPI and libclang (see crates/halo-comm/ci-mpi.sh).
# Environment: MPIRUN (default mpirun), HALOMD_COMM_TIMEOUT (default 60 s).
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --release --locked -p halomd --features mpi
exe="${CARGO_TARGET_DIR:-target}/release/halomd"
model=fixtures/deepmd/models/dpa3_base.dp
xyz=examples/structures/hcno32.xyz

mpirun="${MPIRUN:-mpirun}"
flags=()
if "$mpirun" --version 2>&1 | grep -qi "open mpi"; then
    # OpenMPI refuses root without this, and more ranks than cores without
    # --oversubscribe; MPICH's mpirun accepts neither flag and needs neither.
    flags+=(--oversubscribe)
    if [ "$(id -u)" = 0 ]; then flags+=(--allow-run-as-root); fi
fi
export HALOMD_COMM_TIMEOUT="${HALOMD_COMM_TIMEOUT:-60}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

num='[-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?'
# compare A B LABEL: same JSON shape, every number within 1e-10.
compare() {
    if ! diff <(sed -E "s/$num/N/g" "$1") <(sed -E "s/$num/N/g" "$2") >/dev/null; then
        echo "$3: the JSON documents differ in shape" >&2
        head -c 300 "$1" "$2" >&2
        exit 1
    fi
    paste <(grep -oE "$num" "$1") <(grep -oE "$num" "$2") | awk -v label="$3" '
        BEGIN { tol = 1e-10; max = 0 }
        { d = $1 - $2; if (d < 0) d = -d; if (d > max) max = d }
        END {
            printf "%s: %d numbers, max |diff| = %g\n", label, NR, max
            exit !(NR > 100 && max <= tol)
        }'
}

"$exe" eval --model "$model" "$xyz" >"$tmp/threads1.json"
for n in 2 4; do
    echo "== mpirun -n $n halomd eval --comm mpi"
    "$exe" eval --comm threads --ranks "$n" --model "$model" "$xyz" >"$tmp/threads$n.json"
    timeout 600 "$mpirun" "${flags[@]}" -n "$n" "$exe" eval --comm mpi --model "$model" "$xyz" \
        >"$tmp/mpi$n.json"
    compare "$tmp/mpi$n.json" "$tmp/threads$n.json" "mpi $n ranks vs threads $n ranks"
    compare "$tmp/mpi$n.json" "$tmp/threads1.json" "mpi $n ranks vs threads 1 rank"
done

echo "== --ranks that does not match mpirun -n must fail with a message"
if out=$(timeout 120 "$mpirun" "${flags[@]}" -n 2 "$exe" eval --comm mpi --ranks 3 \
    --model "$model" "$xyz" 2>&1); then
    echo "$out"
    echo "mpirun -n 2 with --ranks 3 succeeded" >&2
    exit 1
fi
if ! echo "$out" | grep -q "MPI world has 2 processes"; then
    echo "$out"
    echo "no error explained the rank mismatch" >&2
    exit 1
fi
echo "rank mismatch: ok"

echo "== mpirun -n 2 halomd run --comm mpi: the same thermo CSV, bit for bit, as --comm threads"
root=$(pwd)
for comm in threads mpi; do
    mkdir -p "$tmp/run-$comm"
    cat >"$tmp/run-$comm/in.toml" <<TOML
structure = "$root/examples/cu-emt/cu256.xyz"
model = "$root/examples/cu-emt/cu_se_e2_a.dp"
[md]
ensemble = "nvt"
temperature = 600
timestep = 2
steps = 60
skin = 0.3
[output]
thermo_every = 5
trajectory_every = 20
checkpoint_every = 30
progress = "never"
[parallel]
comm = "$comm"
TOML
done
# threads needs the rank count; under mpirun the world size decides (no ranks key).
echo "ranks = 2" >>"$tmp/run-threads/in.toml"
"$exe" run "$tmp/run-threads/in.toml"
timeout 600 "$mpirun" "${flags[@]}" -n 2 "$exe" run "$tmp/run-mpi/in.toml"
cmp "$tmp/run-threads/thermo.csv" "$tmp/run-mpi/thermo.csv"
cmp "$tmp/run-threads/traj.xyz" "$tmp/run-mpi/traj.xyz"
echo "run under mpi: thermo and trajectory identical to threads"
