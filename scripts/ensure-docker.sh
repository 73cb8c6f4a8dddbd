#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine.
# A user whose Docker already answers is never touched: we only install and start
# Debian's engine when `docker info` fails.
set -euo pipefail

log() { printf '[ensure-docker] %s\n' "$*" >&2; }

engine_answers() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_answers; then
  log "Docker engine already answers; leaving it alone."
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  log "No Docker engine answers and this script is not root: start Docker yourself (e.g. 'sudo systemctl start docker')."
  exit 1
fi

dockerd_major() { dockerd --version 2>/dev/null | sed -n 's/^Docker version \([0-9]*\)\..*/\1/p'; }

# Debian 12's docker.io (20.10.24) can deadlock in libnetwork when containers are created and
# removed quickly, as isol8's pools and tests do (moby/moby#42545, fixed in Docker 23; seen here:
# every container call hung). On bookworm the engine therefore comes from Debian 13 (trixie),
# pinned low so nothing else is taken from it: docker.io 26 installs with bookworm's containerd,
# runc and libc.
engine_pkgs=(docker.io)
if [ "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")" = bookworm ]; then
  engine_pkgs=(docker.io/trixie docker-cli/trixie)
fi
major="$(dockerd_major || true)"
if ! command -v dockerd >/dev/null 2>&1 || [ "${major:-0}" -lt 23 ] || ! command -v runsc >/dev/null 2>&1; then
  log "Installing Debian's Docker engine (docker.io${major:+, replacing $major.x}) and gVisor (runsc)..."
  export DEBIAN_FRONTEND=noninteractive
  if [ "${engine_pkgs[0]}" = docker.io/trixie ]; then
    echo "deb http://deb.debian.org/debian trixie main" > /etc/apt/sources.list.d/isol8-trixie.list
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' > /etc/apt/preferences.d/isol8-trixie
  fi
  apt-get update -qq
  # --no-install-recommends keeps it small; iptables is needed for bridge networking; runsc is
  # gVisor, the optional stronger isolation (engine option ociRuntime: "runsc").
  # containerd, runc and tini are named so they come from the default release (bookworm's, the
  # combination tested with docker.io 26), not from trixie.
  apt-get install -y -qq --no-install-recommends iptables ca-certificates runsc containerd runc tini "${engine_pkgs[@]}" >/dev/null
fi

# Register gVisor with an engine we start ourselves (never with a user's running one). Debian's
# runsc (2022) cannot set up networking here, so it is registered for network "none" only.
if [ ! -e /etc/docker/daemon.json ] && command -v runsc >/dev/null 2>&1; then
  mkdir -p /etc/docker
  printf '{"runtimes": {"runsc": {"path": "%s", "runtimeArgs": ["--network=none"]}}}\n' "$(command -v runsc)" > /etc/docker/daemon.json
fi

# The client installed elsewhere (e.g. /usr/local/bin/docker) may be newer than the engine;
# it negotiates the API version, so either client works.
if ! pgrep -x dockerd >/dev/null 2>&1; then
  if command -v systemctl >/dev/null 2>&1 && [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ]; then
    log "Starting docker through systemd..."
    systemctl start docker
  else
    log "Starting dockerd in the background (log: /var/log/isol8-dockerd.log)..."
    # Debian 12 defaults to iptables-nft; fall back to legacy where nft is not available.
    if ! iptables -L >/dev/null 2>&1 && command -v iptables-legacy >/dev/null 2>&1; then
      update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null 2>&1 || true
      update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null 2>&1 || true
    fi
    nohup dockerd >/var/log/isol8-dockerd.log 2>&1 &
  fi
fi

for i in $(seq 1 60); do
  if engine_answers; then
    log "Docker engine is up ($(docker version --format '{{.Server.Version}}' 2>/dev/null))."
    exit 0
  fi
  sleep 1
done
log "Docker engine did not answer within 60 s; see /var/log/isol8-dockerd.log"
tail -n 30 /var/log/isol8-dockerd.log >&2 || true
exit 1
