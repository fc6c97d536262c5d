#!/usr/bin/env bash
# Creates .venv at the repository root with the Python SMPP peers used by
# tests/smpp_interop.rs: smpp34 (an SMSC) and smpplib (an ESME client).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv
    python3 -m venv "$venv"
  fi
fi
if ! "$venv/bin/python" -c 'import smpp34, smpplib' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'smpp34==1.5.0' 'smpplib==2.2.4'
fi
"$venv/bin/python" -c 'import smpp34, smpplib; print("smpp venv ready:", smpp34.__name__, smpplib.__name__)'
