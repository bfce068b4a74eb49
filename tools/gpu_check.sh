#!/usr/bin/env bash
# The GPU check (issue 15): in under 8 minutes on one CUDA GPU,
#   1. `engine bench` at 512x512 / 50 steps, release (fp32) vs every preset at fp16 (default, fast, quick,
#      instant: seconds per frame, UNet counts, peak memory);
#   2. the memory options at 512x512 / 10 steps, one frame (peak memory of each, default and fast);
#   3. the toy evaluation on CUDA and on the CPU (2 scenes, default, fast, quick and instant side by side), and the
#      comparison: every saved frame of the CUDA run within TOLERANCE (mean absolute difference on
#      [0, 1] RGB) of the CPU run's, and the adherence of each method within 0.02.
# Usage: tools/gpu_check.sh [OUT_DIR] [TOY_MODELS_DIR] [TOY_SCENES_DIR]
# Results: OUT_DIR/bench_512.json, bench_memory.json, eval_cuda/, eval_cpu/, compare.json, gpu_check.log
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-out/gpu_check}}
MODELS=${2:-${DH_TOY_MODEL:?pass the toy model folder or set DH_TOY_MODEL}}
SCENES=${3:-${DH_SCENES:?pass the toy scenes folder or set DH_SCENES}/toy}
TOLERANCE=${TOLERANCE:-0.02}
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
start=$(date +%s)

echo "== 1. bench 512x512, 50 steps, 4 frames: release (fp32) / every preset at fp16 (default, fast, quick, instant)"
timeout 300 "$PY" -m engine bench --device cuda --dtype fp16 --resolution 512 --steps 50 --frames 4 \
    --out "$OUT/bench_512.json"
"$PY" - "$OUT/bench_512.json" <<'PYEOF'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
for r in rows:  # seconds per frame of each preset, side by side
    print(f"{r['config']:<10} {r['dtype']:<14} {r['edit_seconds_per_frame']:7.3f} s/frame  "
          f"{r['edit_unet_equivalents_per_frame']:6.1f} UNet-eq/frame  prepare {r['prepare_seconds']:7.2f} s")
PYEOF

echo "== 2. memory options, 512x512, 10 steps, 1 frame"
timeout 150 "$PY" -m engine bench --device cuda --resolution 512 --steps 10 --frames 1 --configs default fast \
    --memory-options --out "$OUT/bench_memory.json" || echo "memory options: did not finish in time"

if [ -d "$MODELS/diffusion" ] && [ -d "$SCENES" ]; then
  echo "== 3. toy eval, CUDA vs CPU (fp32, 2 scenes, default, fast, quick and instant side by side)"
  for dev in cuda cpu; do
    timeout 200 "$PY" -m engine eval --scenes "$SCENES" --models "$MODELS" --limit 2 --no-cycle --segmenter colour \
        --device $dev --dtype fp32 --compare-presets fast quick instant --out "$OUT/eval_$dev" >/dev/null
  done
  "$PY" - "$OUT" "$TOLERANCE" <<'PYEOF'
import json, sys
from pathlib import Path
import numpy as np
from PIL import Image
out, tol = Path(sys.argv[1]), float(sys.argv[2])
diffs = {}
for p in sorted((out / "eval_cuda").glob("*/*.png")):
    if p.name.startswith(("edit_", "no_guidance_", "preset_")):
        q = out / "eval_cpu" / p.relative_to(out / "eval_cuda")
        a, b = (np.asarray(Image.open(x).convert("RGB"), np.float32) / 255 for x in (p, q))
        diffs[str(p.relative_to(out / "eval_cuda"))] = float(np.abs(a - b).mean())
rep = {d: json.loads((out / f"eval_{d}" / "report.json").read_text())["summary"]["methods"] for d in ("cuda", "cpu")}
iou = {m: (rep["cuda"][m]["adherence_iou"], rep["cpu"][m]["adherence_iou"]) for m in rep["cpu"]}
ok = max(diffs.values()) <= tol and all(abs(a - b) <= 0.02 for a, b in iou.values() if a is not None)
json.dump({"tolerance": tol, "max_mean_abs_diff": max(diffs.values()), "images": diffs,
           "adherence_cuda_vs_cpu": iou, "ok": ok}, open(out / "compare.json", "w"), indent=1)
print(f"CUDA vs CPU: max mean |diff| {max(diffs.values()):.4f} (tolerance {tol}); adherence {iou}; "
      f"{'OK' if ok else 'DIFFERENT'}")
PYEOF
else
  echo "== 3. skipped: no toy model at $MODELS or scenes at $SCENES"
fi
echo "gpu_check: $(( $(date +%s) - start )) s"
