#!/usr/bin/env bash
# Builds halo-comm with its `mpi` feature and runs the conformance check
# (examples/mpi_smoke.rs) under mpirun with 2 and 4 ranks.
#
# Needs an MPI and libclang, e.g. on Debian/Ubuntu:
#   apt-get install -y libopenmpi-dev openmpi-bin libclang-dev pkg-config
# Environment: MPIRUN (default mpirun), HALOMD_COMM_TIMEOUT (default 60 s).
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build -p halo-comm --features mpi --examples
exe="${CARGO_TARGET_DIR:-target}/debug/examples/mpi_smoke"

mpirun="${MPIRUN:-mpirun}"
flags=()
if "$mpirun" --version 2>&1 | grep -qi "open mpi"; then
    # OpenMPI refuses root without this, and more ranks than cores without
    # --oversubscribe; MPICH's mpirun accepts neither flag and needs neither.
    flags+=(--oversubscribe)
    if [ "$(id -u)" = 0 ]; then flags+=(--allow-run-as-root); fi
fi
export HALOMD_COMM_TIMEOUT="${HALOMD_COMM_TIMEOUT:-60}"

for n in 2 4; do
    echo "== mpirun -n $n mpi_smoke"
    timeout 600 "$mpirun" "${flags[@]}" -n "$n" "$exe"
done

echo "== failure drill: rank 1 hangs; the job must fail within the timeout, naming rank 1"
# (a successful job here is a failure of the drill)
start=$(date +%s)
if out=$(HALOMD_COMM_TIMEOUT=2 MPI_SMOKE_HANG=1 timeout 60 "$mpirun" "${flags[@]}" -n 3 "$exe" 2>&1); then
    echo "$out"
    echo "failure drill: the job succeeded although rank 1 hung" >&2
    exit 1
fi
echo "$out" | grep "timed out" | head -n 3
if ! echo "$out" | grep -q "recv from rank 1 .* waiting for rank(s) 1 "; then
    echo "$out"
    echo "failure drill: no error named rank 1" >&2
    exit 1
fi
echo "failure drill: ok after $(( $(date +%s) - start )) s"
