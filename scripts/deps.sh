#!/usr/bin/env bash
# Installs what snaparc needs to build and test, from Debian's packages, when
# it is missing. Needs root (or sudo) only when something is missing.
set -euo pipefail
packages=(cmake make gcc g++ clang libclang-rt-14-dev pkg-config python3
          liblmdb-dev liblz4-dev libsnappy-dev libzstd-dev libxxhash-dev libcriterion-dev
          libpcre2-dev
          prometheus
          lmdb-utils valgrind)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root to install ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
