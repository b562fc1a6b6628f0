#!/usr/bin/env bash
# Fuzzes what strangers and other processes reach (fuzz/README.md): builds every target in
# fuzz/ with `cargo +nightly fuzz build`, then runs each for SECONDS (default 60), as many at
# once as there are cores (FUZZ_JOBS to choose), from its committed seeds (fuzz/seeds/<target>/)
# and what earlier runs here found (fuzz/corpus/<target>/, not committed). Fails on any crash,
# timeout or out-of-memory, printing the input that caused it (fuzz/artifacts/<target>/…).
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export PATH="$HOME/.cargo/bin:$PATH"

seconds=${1:-60}
[ $# -gt 0 ] && shift
case "$seconds" in
  '' | *[!0-9]*)
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET…]" >&2
    exit 2
    ;;
esac
jobs=${FUZZ_JOBS:-$(nproc)}
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# Release with debug assertions (an overflow is a finding too) and AddressSanitizer (for the
# unsafe code and the C underneath: libc calls, SQLite).
build_flags=(--debug-assertions)
echo "==> building every fuzz target (cargo +nightly fuzz build ${build_flags[*]})"
build_started=$SECONDS
cargo +nightly fuzz build "${build_flags[@]}"
echo "    built in $((SECONDS - build_started))s"
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin_dir=target/$host/release

# A scratch state directory per target process (the store targets write files), on tmpfs when
# there is one, removed when the run ends.
scratch_base=/dev/shm
[ -d "$scratch_base" ] && [ -w "$scratch_base" ] || scratch_base=${TMPDIR:-/tmp}
scratch=$(mktemp -d "$scratch_base/clawpair-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export CLAWPAIR_FUZZ_SCRATCH=$scratch
logs=$scratch/logs
mkdir -p "$logs"

# -timeout: one input that takes 10 s is a hang (a typical one takes well under a millisecond).
# -rss_limit_mb: a target that grows past 2 GiB is a finding (inputs are at most a few KiB).
run() {
  local t=$1
  mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
  "$bin_dir/$t" "corpus/$t" "seeds/$t" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$logs/$t.log" 2>&1
}

echo "==> running each for ${seconds}s, $jobs at a time"
run_started=$SECONDS
declare -A pid_of=()
for t in "${targets[@]}"; do
  [ -x "$bin_dir/$t" ] || {
    echo "no fuzz target $t (cargo +nightly fuzz list names them)" >&2
    exit 2
  }
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run "$t" &
  pid_of[$t]=$!
done

failed=()
for t in "${targets[@]}"; do
  status=0
  wait "${pid_of[$t]}" || status=$?
  log=$logs/$t.log
  # The last status line (`#N DONE cov: … ft: … corp: …`) and the final stats.
  line=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$line")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$line")
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$line")
  if [ "$status" -eq 0 ]; then
    printf '    %-18s ok      %9s execs (%5s/s)  cov %5s  ft %5s  corpus %s\n' \
      "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
  else
    failed+=("$t")
    printf '    %-18s FAILED  (exit %d)\n' "$t" "$status"
    grep -E '^==[0-9]+==|^thread .* panicked|^SUMMARY|^Test unit written to|^artifact_prefix|Base64' "$log" | sed 's/^/      /' || true
    tail -n 30 "$log" | sed 's/^/      | /'
    for a in $(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log"); do
      echo "      input: fuzz/$a (replay: cargo +nightly fuzz run -a $t fuzz/$a)"
    done
  fi
done
echo "    ran in $((SECONDS - run_started))s"

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s without a finding"
