#!/usr/bin/env bash
# Runs the 32-trial digits grid in PyTorch (two worker processes, one thread each) and in
# lcurve (`lcurve run sweeps/digits_full.toml`: stopping off, reports on, 2 at once), back to
# back on this machine, and prints the ratio. Optional; not part of CI.
#
#   python3 -m venv .venv-bench && .venv-bench/bin/pip install torch scikit-learn
#   PYTHON=.venv-bench/bin/python bash benches/compare_pytorch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

py=$("$PYTHON" benches/pytorch_sweep.py --workers 2)
echo "$py"
py_s=$(echo "$py" | sed -E 's/.*processes: ([0-9.]+) s.*/\1/')

start=$(date +%s.%N)
target/release/lcurve --db "$work/bench.db" run sweeps/digits_full.toml --reports "$work/reports" 2> "$work/log"
end=$(date +%s.%N)
lc_s=$(echo "$end - $start" | bc -l)
grep "done in" "$work/log"
best=$(target/release/lcurve --db "$work/bench.db" query \
  "select printf('%.4f', min(best_val_loss)), printf('%.4f', max(best_val_accuracy)) from trial_summary" --format csv | tail -1)
printf 'lcurve: 32 trials x 30 epochs, 2 at once: %.2f s; best val_loss, val_accuracy: %s\n' "$lc_s" "$best"
printf 'lcurve takes %.2fx the time of PyTorch with 2 processes (goal: 0.3x)\n' "$(echo "$lc_s / $py_s" | bc -l)"
