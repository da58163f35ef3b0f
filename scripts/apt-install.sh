#!/usr/bin/env bash
# Installs the given Debian packages (as root) without starting their system services: antrea-ts
# runs its own private OVS daemons, so the distribution's openvswitch-switch service must stay off.
# Used by scripts/bootstrap.sh (only what is missing) and by .ci/run (the whole list).
set -euo pipefail
[ $# -gt 0 ] || exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "apt-install: installing Debian packages needs root: $*" >&2
  exit 1
fi
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
fi
trap '[ "$own_policy" = 1 ] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@" >/dev/null
