#!/usr/bin/env bash
# Install the Debian packages the site (or the tests) need, and say what is being done.
#   scripts/install-packages.sh run    the engine, the sandbox images' busybox, bash, jq and curl, the registry, Redis
#   scripts/install-packages.sh test   the above, plus Chromium, a CJK font, PostgreSQL, docker-compose and
#                                      debootstrap (the site's image for the cluster is built from Debian packages)
# As root on Debian it runs apt-get for what is missing; otherwise it prints the exact command and
# exits 0 for `run` (the site still serves and each lesson page says what is missing) and 1 for
# `test` (the tests fail rather than skip without their parts).
set -euo pipefail
what="${1:-run}"
RUN_PACKAGES="docker.io busybox-static bash-static jq curl ca-certificates docker-registry redis-server containerd containernetworking-plugins conntrack iptables gcc libc6-dev"
# fonts-wqy-microhei: a small font with Chinese glyphs, so the browser tests' screenshots of the
# Chinese pages show Chinese (Debian's Chromium has none); the site serves no font to anyone.
TEST_PACKAGES="$RUN_PACKAGES chromium fonts-wqy-microhei postgresql docker-compose debootstrap"
case "$what" in
  run) packages="$RUN_PACKAGES" ;;
  test) packages="$TEST_PACKAGES" ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

for tool in python3 npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool is missing: install Python 3.11 and Node 20 with npm first" >&2; exit 1; }
done

missing=""
if command -v dpkg >/dev/null 2>&1; then
  for pkg in $packages; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
  done
else
  echo "Not a Debian system: install the equivalents of$packages yourself." >&2
  exit 0
fi
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian packages:$missing (apt-get; this happens once)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq $missing >/dev/null
  echo "Installed:$missing"
  exit 0
fi
echo "Missing Debian packages:$missing" >&2
echo "Install them as root:  apt-get install$missing" >&2
[ "$what" = run ] && { echo "Serving without them: lesson pages say what each missing part stops." >&2; exit 0; }
exit 1
