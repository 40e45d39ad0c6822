#!/usr/bin/env bash
# Runs every cargo-fuzz target for N seconds each (default 60), one after another, nice'd.
#
#   bash scripts/fuzz.sh [seconds] [target...]
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Each target
# starts from its committed seeds (fuzz/corpus/<target>/, read-only) and keeps what it finds in
# fuzz/work/<target>/ (not committed). A crash leaves its input in fuzz/artifacts/<target>/ and
# makes this script exit non-zero. The last libFuzzer status line of each target (executions,
# coverage, features) is printed at the end and kept in fuzz/work/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECS="${1:-60}"
shift || true
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then
  TARGETS=(line_protocol write_records timestream_sql wal_segment catalog manifest)
fi

nice -n 19 cargo +nightly fuzz build -O

failed=0
for t in "${TARGETS[@]}"; do
  mkdir -p "work/$t"
  echo "== fuzz $t for ${SECS}s =="
  if ! nice -n 19 cargo +nightly fuzz run -O "$t" "work/$t" "corpus/$t" -- \
      -max_total_time="$SECS" -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 \
      >"work/$t.log" 2>&1; then
    echo "fuzz $t: FAILED (see fuzz/work/$t.log and fuzz/artifacts/$t/)"
    failed=1
  fi
done

echo
echo "== summary =="
for t in "${TARGETS[@]}"; do
  execs="$(grep -a '^stat::number_of_executed_units' "work/$t.log" | awk '{print $2}' | tail -1)"
  last="$(grep -a -E '#[0-9]+.*(cov|DONE)' "work/$t.log" | tail -1)"
  echo "$t: executions ${execs:-?}; ${last:-no status line}"
done
exit $failed
