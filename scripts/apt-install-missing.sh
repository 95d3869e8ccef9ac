#!/usr/bin/env bash
# Installs those of the named Debian packages that are not installed yet (non-interactive, sudo when not
# root); does nothing when all are there. Usage: scripts/apt-install-missing.sh WHO PACKAGE...
# (WHO prefixes the messages.)
set -euo pipefail

who="$1"
shift
missing=()
for pkg in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
((${#missing[@]})) || exit 0

if ! command -v apt-get >/dev/null; then
  echo "$who: FAILED: missing ${missing[*]} and no apt-get to install them" >&2
  exit 1
fi
echo "$who: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq || { echo "$who: FAILED: apt-get update" >&2; exit 1; }
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
  { echo "$who: FAILED: could not install ${missing[*]}" >&2; exit 1; }
