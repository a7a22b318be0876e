#!/bin/sh
# Install the Debian 12 packages meshlog builds and tests with. Idempotent.
set -e
pkgs="build-essential autoconf automake libtool pkg-config libbsd-dev
libjansson-dev libevent-dev libsodium-dev libcriterion-dev python3 util-linux
iproute2 git less nodejs ncurses-bin libpython3.11-testsuite
python3-torch"
missing=$(for p in $pkgs; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
	    grep -q '^install ok installed$' || echo "$p"
done)
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "debian-deps: run as root to install:" $missing >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq $missing
