#!/usr/bin/env bash
# Issue 24 §4 on one GPU: pretrain the small T5 bimodally (5 minutes), run benchmarks/dece-gpu.toml
# (CE and DeCE on Lyra BadPre 5% and Bugs2Fix dead code, seed 1), and merge the results into
# their own leaderboard (they record the GPU). Usage: bash benchmarks/dece-gpu.sh [OUT]
set -euo pipefail
out="${1:-results/dece-gpu}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'codebackdoor: error: dece-gpu.sh needs a CUDA GPU')"
# Pretrain once: a finished model in the cache is kept (a rerun resumes the cells only), an
# interrupted pretraining resumes.
if ! python -c "import sys; from codebackdoor.models.pretrained import pretrained_directory, read_card; sys.exit(read_card(pretrained_directory('small-t5')) is None)"; then
    codebackdoor pretrain --arch t5 --size small --max-time 5m --resume
fi
codebackdoor bench "$here/dece-gpu.toml" --out "$out"
codebackdoor leaderboard build "$out" --out "$out/dece-gpu.json"
codebackdoor leaderboard compare "$out/dece-gpu.json" --baseline none --format markdown
