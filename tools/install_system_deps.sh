#!/usr/bin/env bash
# System libraries the env suites need (headless software GL for MuJoCo). Installs only what is missing,
# non-interactively, and only when running as root with apt-get; otherwise says what to install.
set -euo pipefail
missing=()
for pkg in libosmesa6; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "warning: missing system packages ${missing[*]} (headless MuJoCo rendering); install them with apt-get" >&2
fi
