#!/usr/bin/env bash
# Installs what antrea-ts needs on a Debian machine: the Debian packages (as root) and the npm
# packages from the lockfile, including the pinned Node 24 toolchain. Idempotent and quick when
# everything is already there. Used by the README's commands and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[bootstrap] %s\n' "$*"; }

# Debian packages the agent, the lab and the tests use.
DEB_PACKAGES=(
  openvswitch-switch openvswitch-common  # ovsdb-server, ovs-vswitchd, ovs-vsctl, ovs-ofctl
  iproute2 iptables ipset kmod procps    # host networking
  containernetworking-plugins            # host-local IPAM, loopback
  iputils-ping iperf3 tcpdump            # probes, benchmarks, captures
  gcc-mingw-w64-x86-64                   # cross-compiles the Windows CNI launcher (antrea.exe)
  ca-certificates git
)

# `bootstrap.sh --deb-packages` prints the list (one per line) for callers that install it themselves.
if [ "${1:-}" = "--deb-packages" ]; then
  printf '%s\n' "${DEB_PACKAGES[@]}"
  command -v kubectl >/dev/null 2>&1 || echo kubernetes-client
  command -v npm >/dev/null 2>&1 || printf '%s\n' nodejs npm
  exit 0
fi

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]}; run this as root to install them" >&2
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  scripts/apt-install.sh "${missing[@]}"
fi

# npm packages, exactly as locked (this also brings the pinned Node 24 into node_modules/.bin).
stamp=node_modules/.antrea-ts-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  say "installing npm packages from package-lock.json"
  npm ci --no-audit --no-fund --loglevel=error
  # tap compiles its plugin set (configured in package.json) once.
  PATH="$PWD/node_modules/.bin:$PATH" tap build >/dev/null
  touch "$stamp"
fi

node_version=$(node_modules/.bin/node --version)
case "$node_version" in
  v24.*) ;;
  *) say "expected Node 24 in node_modules/.bin, found $node_version" >&2; exit 1 ;;
esac
say "ready (node $node_version, $(ovs-vswitchd --version | head -1), kubectl $(kubectl version --client 2>/dev/null | head -1 | sed 's/.*: //'))"
