#!/usr/bin/env bash
# Prepares a fresh machine: the servers and tools the tests use (Debian packages,
# promtool among them: nothing on PyPI ships it) and the project's virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in promtool prometheus amtool prometheus-redis-exporter prometheus-blackbox-exporter redis-server redis-sentinel; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages for: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    prometheus prometheus-alertmanager prometheus-redis-exporter prometheus-blackbox-exporter redis-server \
    redis-sentinel >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch .venv/.installed
fi
