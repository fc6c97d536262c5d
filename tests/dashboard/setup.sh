#!/usr/bin/env bash
# Installs puppeteer-core (pinned by package-lock.json) into
# tests/dashboard/node_modules for tests/dashboard.rs. Debian's nodejs has
# no npm of its own; NodeSource's has one built in.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)"
if ! command -v npm >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm
fi
if ! node -e "require('$dir/node_modules/puppeteer-core')" 2>/dev/null; then
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
fi
node -e "console.log('dashboard driver ready: puppeteer-core', require('$dir/node_modules/puppeteer-core/package.json').version)"
