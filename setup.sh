#!/usr/bin/env bash
# One entry point for a fresh Debian machine (run as root):
#   bash setup.sh demo   install what dnabox needs, then run the demo on the built-in lab
#   bash setup.sh test   install the same plus the dev tools, then lint, type-check and test
# Both are idempotent: a second run reuses the venv, the packages and the cached rootfs.
set -euo pipefail
cd "$(dirname "$0")"

what=${1:-}
case "$what" in
  demo|test) ;;
  *) echo "usage: bash setup.sh demo|test" >&2; exit 2 ;;
esac
if [ "$(id -u)" != 0 ]; then
  echo "setup.sh needs root (the lab builds network namespaces): sudo bash setup.sh $what" >&2
  exit 2
fi

apt_packages=(
  python3 python3-venv python3-pip git graphviz iproute2 iptables
  openssh-client openssh-server debootstrap dpkg-dev shellcheck
  openvswitch-switch containerd runc crun containernetworking-plugins
  nats-server python3-numpy
  chromium  # the view's browser tests (Playwright drives Debian's chromium)
)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi
echo "==> pip install -e .[dev]"
.venv/bin/pip install -q --disable-pip-version-check -e ".[dev]"
export PATH="$PWD/.venv/bin:$PATH"
# The lab's caches: a Debian root filesystem and a local package repository (once).
echo "==> dnabox lab cache"
dnabox lab cache

if [ "$what" = demo ]; then
  exec dnabox demo
fi

echo "==> ruff"
ruff check src tests stacks bench
echo "==> mypy (strict)"
mypy
echo "==> pytest"
# pytest exits 5 when it collected no test: that is a failure here, never a pass.
pytest -q
echo "==> fault tests again, under CPU load (2 busy processes: races show up here first)"
DNABOX_TEST_CPU_LOAD=2 exec pytest -q -m fault -p no:cacheprovider
