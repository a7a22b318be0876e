#!/bin/sh
# Install the Debian 12 packages meshlog builds and tests with. Idempotent.
set -e
pkgs="build-essential autoconf automake libtool pkg-config libbsd-dev
libjansson-dev libevent-dev libsodium-dev libzstd-dev zstd libcriterion-dev
python3 util-linux
iproute2 git less vim procps nodejs ncurses-bin libpython3.11-testsuite
clang gdb"
# Launchers the tests run, without their recommends (python3-torch would
# bring libtorch-dev and some two hundred packages more).
lean="python3-torch python3-tqdm openmpi-bin libopenmpi-dev"
missing() {
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
		    grep -q '^install ok installed$' || echo "$p"
	done
}
# shellcheck disable=SC2086
need=$(missing $pkgs)
# shellcheck disable=SC2086
need_lean=$(missing $lean)
[ -z "$need$need_lean" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "debian-deps: run as root to install:" $need $need_lean >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
[ -z "$need" ] || apt-get install -y -qq $need
# shellcheck disable=SC2086
[ -z "$need_lean" ] || apt-get install -y -qq --no-install-recommends \
    $need_lean
