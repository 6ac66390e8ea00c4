#!/usr/bin/env bash
# Install the named Debian packages that are not installed yet, without starting their services.
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deb: not root; install these packages first: ${missing[*]}" >&2
  exit 2
fi
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  # Keep apt from starting system-wide services (sshd on port 22, mariadb, nginx...).
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
trap '[ $created_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
# Another apt or dpkg process may hold the lock (unattended upgrades, a parallel run): wait for it.
lock=(-o DPkg::Lock::Timeout=1200)
for attempt in $(seq 1 240); do
  if err=$(apt-get "${lock[@]}" update -qq 2>&1); then break; fi
  if ! grep -qi "lock" <<<"$err" || [ "$attempt" -eq 240 ]; then echo "$err" >&2; exit 1; fi
  [ "$attempt" -eq 1 ] && echo "install-deb: another apt process holds the lock; waiting for it"
  sleep 5
done
apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
