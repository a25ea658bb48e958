#!/usr/bin/env bash
# The standard perf_analyzer sweep over our models, over gRPC, with Triton's GPU/CPU metrics.
# Runs where perf_analyzer is installed: NVIDIA's Triton SDK image (compose profile `perf`).
#
#   benchmarks/perf_analyzer/run.sh [models…]        (default: every model with inputs)
#
# Environment: TRITON_GRPC (localhost:8001), TRITON_METRICS (http://localhost:8002/metrics),
# CONCURRENCY (1:16:1, start:end:step), REQUESTS per measurement window (50),
# RESULTS (benchmarks/results/perf_analyzer). Inputs: `make perf-inputs`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
inputs="$here/inputs"
grpc="${TRITON_GRPC:-localhost:8001}"
metrics="${TRITON_METRICS:-http://localhost:8002/metrics}"
concurrency="${CONCURRENCY:-1:16:1}"
requests="${REQUESTS:-50}"
results="${RESULTS:-$here/../results/perf_analyzer}"

if [ "$#" -gt 0 ]; then
  models=("$@")
else
  models=()
  for data in "$inputs"/*.json; do
    [ -e "$data" ] && models+=("$(basename "$data" .json)")
  done
fi
if [ "${#models[@]}" -eq 0 ]; then
  echo "no inputs in $inputs: run 'make perf-inputs' first" >&2
  exit 2
fi

mkdir -p "$results"
for model in "${models[@]}"; do
  data="$inputs/$model.json"
  if [ ! -f "$data" ]; then
    echo "no input data for $model ($data): run 'make perf-inputs'" >&2
    exit 2
  fi
  read -r -a shapes < "$inputs/$model.args" || true
  echo "== $model"
  perf_analyzer \
    -m "$model" -u "$grpc" -i grpc \
    --input-data "$data" "${shapes[@]}" \
    --concurrency-range "$concurrency" \
    --measurement-mode count_windows --measurement-request-count "$requests" \
    --collect-metrics --metrics-url "$metrics" --metrics-interval 1000 \
    -f "$results/$model.csv" --verbose-csv
done
