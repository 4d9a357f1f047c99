#!/usr/bin/env bash
# System packages the test suite drives for real: Chromium (web page), nginx (load balancer),
# promtool (metrics lint), envsubst (nginx templates), redis-server (rate limits in Redis).
# Installs only what is missing; needs root (CI runs as root).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# envsubst fills the TLS paths into nginx.conf as the nginx image does (tests/deploy/test_nginx.py)
command -v envsubst >/dev/null 2>&1 || need+=(gettext-base)
# tests/integration/test_rate_limit.py counts limits in a real Redis it starts
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
