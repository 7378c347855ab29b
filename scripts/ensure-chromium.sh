#!/usr/bin/env bash
# Makes sure the headless Chromium that the httpapi browser test drives is
# installed at /usr/bin/chromium, where the test looks for it. Safe to run
# again: it installs nothing when the binary is there.
set -euo pipefail

chromium=/usr/bin/chromium

if [[ ! -x $chromium ]]; then
	if [[ $(id -u) -ne 0 ]]; then
		echo "ensure-chromium: $chromium is missing and installing it needs root: run this script as root, or apt-get install chromium" >&2
		exit 1
	fi
	echo "ensure-chromium: installing Chromium from Debian's packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# Recommends would add fonts, drivers and desktop integration the
	# headless test never uses.
	apt-get install -y -q --no-install-recommends chromium
fi

echo "ensure-chromium: $("$chromium" --version 2>/dev/null) at $chromium"
