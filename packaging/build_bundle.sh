#!/usr/bin/env bash
# Build the one-folder desktop bundle (dist/studio/) with PyInstaller, then smoke-test it: the frozen app
# makes the demo project and renders the window to a PNG offscreen. Run it in an environment where Studio
# is installed (not editable) with the torch build you want to ship, e.g. the CPU build:
#   python3 -m venv /tmp/bundle && /tmp/bundle/bin/pip install torch torchvision \
#       --index-url https://download.pytorch.org/whl/cpu && /tmp/bundle/bin/pip install . pyinstaller
#   PYTHON=/tmp/bundle/bin/python bash packaging/build_bundle.sh
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
out=$(mktemp -d)
"$PYTHON" -m PyInstaller --noconfirm --clean --distpath ../dist --workpath "$out/build" studio.spec
du -sh ../dist/studio
shot="$out/demo.png"
start=$(date +%s.%N)
QT_QPA_PLATFORM=offscreen STUDIO_DATA_DIR="$out/data" ../dist/studio/studio demo "$out/demo" --screenshot "$shot"
end=$(date +%s.%N)
test -s "$shot"
echo "bundle smoke test: demo screenshot $(stat -c %s "$shot") bytes in $(echo "$end - $start" | bc) s"
