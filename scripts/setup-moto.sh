#!/usr/bin/env bash
# The local AWS for the tests (README, Testing): moto in server mode, in the project's own venv
# (.venv, ignored by git), so a fresh machine needs only Python 3 with venv and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
version=5.2.5
if [[ -x .venv/bin/moto_server ]] && .venv/bin/python -c "import moto, sys; sys.exit(moto.__version__ != '$version')" 2>/dev/null; then
  echo "moto $version already in .venv"
  exit 0
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==$version"
.venv/bin/python -c "import moto; print('moto', moto.__version__, 'in .venv')"
