#!/usr/bin/env bash
# Set up the project on a fresh machine: a virtual environment with the
# package installed (CPU torch from this machine's disk), and with --test the
# test dependencies plus Debian's Chromium for the browser test.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
want_milvus=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;     # test tools; includes the Milvus backend (tests run it on milvus-lite)
    --milvus) want_milvus=1 ;; # the Milvus backend only (pymilvus + milvus-lite)
  esac
done

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

# torch first and pinned: a bare "torch" requirement would pull a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "setup: installing torch==2.13.0 (CPU build)"
  pip install torch==2.13.0
fi
if [ "$want_test" = 1 ]; then
  stamp=.venv/.installed-test
  extras=".[test]"
elif [ "$want_milvus" = 1 ]; then
  stamp=.venv/.installed-milvus
  extras=".[milvus]"
else
  stamp=.venv/.installed
  extras="."
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the package ($extras)"
  pip install -e "$extras"
  touch "$stamp"
fi

if [ "$want_test" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian chromium (and a Chinese font for screenshots) for the browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null) \
      || echo "setup: WARNING: could not install chromium; the browser test will fail" >&2
  else
    echo "setup: WARNING: /usr/bin/chromium missing and cannot apt-get it; install Debian's chromium" >&2
  fi
fi
echo "setup: ok"
