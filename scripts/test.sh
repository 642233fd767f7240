#!/usr/bin/env bash
# The test command of the README and of CI: headless, offline, in the project's virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest -q "$@"
