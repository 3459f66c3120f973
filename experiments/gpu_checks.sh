#!/usr/bin/env bash
# Every GPU measurement of experiments/benchmarks.md in one call on a lent GPU machine
# (its image has torch + lightning, not hydra/omegaconf/decord/kornia):
#   ../shared/tools/device-wheels.sh --with-av       # here, once: wheels into .whl/
#   bash experiments/gpu_checks.sh                   # there (carry .whl); results under $OUT
# Writes $OUT/device.txt, one bench JSON + log per row, $OUT/rows.md (the table rows),
# $OUT/profile_combcn.txt (top kernels of a compiled bf16 joint step), and the data-wait
# fraction of a 500-step vidinpaint-train run in $OUT/train_gpu/metrics.json.
# DEVICE=cpu EXTRA="batch_size=1 clip_len=4 size=[32,32] il_size=[64,64] iters=1 warmup=0"
# STEPS=4 smoke-tests the plumbing on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/gpu_checks}
DEVICE=${DEVICE:-cuda}
EXTRA=${EXTRA:-}
STEPS=${STEPS:-500}
mkdir -p "$OUT"
if [ -d .whl ] && ! python3 -c "import hydra" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/src
fi
export WANDB_MODE=disabled
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "$DEVICE"; \
  python3 -c "import torch; print('torch', torch.__version__)"; } > "$OUT/device.txt"

bench() {  # bench NAME OVERRIDES...: one row, JSON in $OUT/NAME.json
  local name=$1
  shift
  # shellcheck disable=SC2086
  timeout 400 python3 -m vidinpaint.bench train device="$DEVICE" "$@" $EXTRA \
    out="$OUT/$name.json" hydra.run.dir="$OUT/runs/$name" >"$OUT/$name.log" 2>&1 ||
    echo "$name: failed (see $name.log)" >>"$OUT/failed.txt"
}

# issue 9: external learning, fp32 (TF32) vs bf16 + channels-last + compile (+ CUDA graphs)
for m in cn3d cn2d combcn; do
  bench "${m}_fp32" model=$m iters=50 warmup=10
  bench "${m}_bf16_cl_compile" model=$m precision=bf16 channels_last=true compile=true \
    iters=50 warmup=10
done
bench combcn_bf16_cl_graphs model=combcn precision=bf16 channels_last=true compile=true \
  model.compile_mode=reduce-overhead iters=50 warmup=10
bench combcn_bf16_cl_compile_unfused model=combcn precision=bf16 channels_last=true \
  compile=true model.fused_adam=false iters=50 warmup=10
for b in 2 4 8; do
  bench "combcn_bf16_b$b" model=combcn precision=bf16 channels_last=true compile=true \
    batch_size=$b iters=20 warmup=5
done
# issue 10: internal learning, with and without the perceptual loss
bench il_fp32 model=dip_vid_flow model.loss.perceptual=0.01 iters=200 warmup=20
bench il_bf16 model=dip_vid_flow model.loss.perceptual=0.01 precision=bf16 iters=200 warmup=20
bench il_bf16_no_lp model=dip_vid_flow precision=bf16 iters=200 warmup=20

# graph breaks and the top kernels of one compiled bf16 joint step
timeout 400 python3 - "$DEVICE" >"$OUT/profile_combcn.txt" 2>&1 <<'EOF' ||
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from vidinpaint.models.completion import CompletionSystem

device = torch.device(sys.argv[1])
system = CompletionSystem(method="combcn", compile=True, channels_last=True).to(device)
system.configure_model()
optimizer = system.configure_optimizers()
size = 128 if device.type == "cuda" else 32
video = torch.rand(1, 32 if device.type == "cuda" else 4, 3, size, size, device=device)
mask = torch.zeros_like(video[:, :, :1])
mask[..., size // 4 : size // 2, size // 4 : size // 2] = 1


def step():
    with torch.autocast(device.type, dtype=torch.bfloat16):
        out = system(system.fill(video, mask), mask)
        loss = system.losses(out, video, mask)["loss"]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


explained = torch._dynamo.explain(lambda: system(system.fill(video, mask), mask))()
print(f"graph breaks in the forward: {explained.graph_break_count}")
for _ in range(5):
    step()
activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
with profile(activities=activities) as prof:
    for _ in range(5):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
print(prof.key_averages().table(sort_by=sort, row_limit=15))
EOF
  echo "profile: failed (see profile_combcn.txt)" >>"$OUT/failed.txt"

# issue 9.3: a real training run, the share of step time spent waiting for data
accelerator=$([ "$DEVICE" = cuda ] && echo "trainer=gpu" || echo "trainer=cpu")
# shellcheck disable=SC2086
timeout 500 python3 -m vidinpaint.train model=combcn "$accelerator" logger=csv \
  trainer.max_steps="$STEPS" schedule.val_check_interval="$STEPS" validate=false \
  num_samples=0 model.compile=true model.channels_last=true \
  paths.data_dir="$OUT/data" hydra.run.dir="$OUT/train_gpu" \
  $( [ -n "$EXTRA" ] && echo "data.clip_len=4 data.size=[32,32]" ) \
  >"$OUT/train_gpu.log" 2>&1 || echo "train_gpu: failed (see train_gpu.log)" >>"$OUT/failed.txt"

python3 - "$OUT" >"$OUT/rows.md" <<'EOF'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
device = (out / "device.txt").read_text().splitlines()[0]
print("| row | device | model | prec | B | T x H x W | ms/iter | samples/s | peak MiB | TFLOP/s | MFU |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for path in sorted(out.glob("*.json")):
    r = json.loads(path.read_text())
    print(
        f"| {path.stem} | {device} | {r.get('model')} | {r.get('precision')} | "
        f"{r['batch_size']} | {r['clip_len']} x {r['size'][0]} x {r['size'][1]} | "
        f"{r['ms_per_iter']:.2f} | {r['samples_per_s']:.3g} | {r['peak_memory_mb']:.0f} | "
        f"{r['tflops_per_s']:.3g} | {r['mfu']} |"
    )
metrics = out / "train_gpu" / "metrics.json"
if metrics.is_file():
    m = json.loads(metrics.read_text())
    print(
        f"\ntrain_gpu: {m.get('global_step')} steps, data wait "
        f"{m.get('perf/data_wait_fraction')}, {m.get('perf/steps_per_s')} steps/s"
    )
EOF
cat "$OUT/rows.md"
[ -f "$OUT/failed.txt" ] && cat "$OUT/failed.txt"
exit 0
