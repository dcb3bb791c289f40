#!/usr/bin/env bash
# The one script run on the lent GPU machine (see ../fashion-mobilenetv2.md). From the repo root,
# with the CUDA runner xz-compressed at target/gpu-bin/sorted-runner.xz and Fashion-MNIST in
# data/fashion-mnist; results under $OUT. It keeps to LIMIT seconds in all:
#   A. the ResNet headline config, 200 of its steps alone on the GPU (images/s against the CPU);
#   B. a MobileNetV2 probe (100 steps) that measures seconds per sorted step after warm-up;
#   C. `compare` on configs/fashion-mobilenetv2.toml with as many steps as the rest of the time
#      allows (at most the config's 1,500): the sorted run, then 5 sub-models alone as 5 parallel
#      processes (--jobs 5), then naive slicing of the alone-trained full model.
set -u
T0=$(date +%s)
LIMIT=${LIMIT:-540}
DEVICE=${DEVICE:-cuda}
RESNET=${RESNET:-configs/fashion-resnet.toml}
MNV2=${MNV2:-configs/fashion-mobilenetv2.toml}
BIN=${BIN:-}
elapsed() { echo $(( $(date +%s) - T0 )); }
log() { echo "[$(elapsed) s] $*" | tee -a "$OUT/timeline.txt"; }
# Seconds at the log line of step $2 in log $1 ("step N/T loss ... (S s)").
at_step() { sed -n "s/^step $2\/[0-9]* .*(\([0-9.]*\) s)\$/\1/p" "$1" | tail -1; }

if [ -z "$BIN" ]; then
  BIN=/tmp/sorted-runner
  xz -dc target/gpu-bin/sorted-runner.xz > "$BIN" && chmod +x "$BIN"
fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
{ nproc; grep -m1 'model name' /proc/cpuinfo; } > "$OUT/host.txt"
log "start: device $DEVICE, limit $LIMIT s"

timeout 120 "$BIN" --device "$DEVICE" train --config "$RESNET" --stop-after 200 --out "$OUT/resnet-probe" \
  > "$OUT/resnet-probe.log" 2>&1
log "A. resnet probe rc=$?: step 150 at $(at_step "$OUT/resnet-probe.log" 150) s, step 200 at $(at_step "$OUT/resnet-probe.log" 200) s"

timeout 100 "$BIN" --device "$DEVICE" train --config "$MNV2" --steps 500 --stop-after 100 --out /tmp/mnv2-probe \
  > "$OUT/mnv2-probe.log" 2>&1
rc=$?
a=$(at_step "$OUT/mnv2-probe.log" 50); b=$(at_step "$OUT/mnv2-probe.log" 100)
log "B. mobilenet probe rc=$rc: step 50 at ${a:-?} s, step 100 at ${b:-?} s"

# The sorted run takes S * r; the alone runs (k = 1, in parallel) about 0.7 * S * r more;
# evaluation, naive slicing and start-up take about 100 s.
budget=$(( LIMIT - $(elapsed) - 100 ))
if [ -n "$a" ] && [ -n "$b" ]; then
  S=$(awk -v a="$a" -v b="$b" -v t="$budget" 'BEGIN { r = (b - a) / 50; s = int(t / (1.7 * r) / 100) * 100;
    if (s > 1500) s = 1500; if (s < 100) s = 100; print s }')
else
  S=300
fi
log "C. compare with $S steps (budget $budget s for training)"
timeout $(( LIMIT - $(elapsed) - 10 )) "$BIN" --device "$DEVICE" compare --config "$MNV2" --steps "$S" --jobs 5 \
  --out "$OUT/mnv2-compare" > "$OUT/mnv2-compare.log" 2>&1
log "C. compare rc=$?"
find "$OUT" -name optim.mpk -delete
# The alone models are only needed for naive slicing; keep them if that did not finish.
[ -f "$OUT/mnv2-compare/compare.json" ] && find "$OUT" -path '*alone-*/checkpoint/model.mpk' -delete
log "done"
