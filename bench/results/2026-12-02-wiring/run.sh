#!/usr/bin/env bash
# Interleaved before/after e2e runs: base (5ed5536) and new (main), cases 1, 2 and delivery.
set -u
BASE_BIN=$(ls -t /work/base/target/release/deps/e2e-* | grep -v '\.d$' | head -1)
NEW_BIN=$(ls -t /work/main/target/release/deps/e2e-* | grep -v '\.d$' | head -1)
export GYGES_BENCH_E2E_CASES=1,2,delivery
for round in 1 2 3; do
  for which in base new; do
    if [ $which = base ]; then bin=$BASE_BIN; dir=/work/base; else bin=$NEW_BIN; dir=/work/main; fi
    start=$(date +%s)
    (cd $dir && GYGES_BENCH_REPORT=/tmp/bench/$which-$round.md $bin --bench > /tmp/bench/$which-$round.out 2>&1)
    echo "$which round $round: $(( $(date +%s) - start )) s, exit $?" >> /tmp/bench/progress.log
  done
done
echo finished >> /tmp/bench/progress.log
