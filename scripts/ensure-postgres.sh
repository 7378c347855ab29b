#!/usr/bin/env bash
# Makes sure the PostgreSQL server programs that internal/pgtest runs (initdb
# and postgres) are installed, and that the postgres user it runs them as
# under root exists. Safe to run again: it installs nothing when they are
# there. The tests start their own throwaway clusters, so Debian's default
# cluster is never needed and is stopped if the install started it.
set -euo pipefail

# Same search as internal/pgtest: PATH first, then Debian's per-version
# directories, preferring 15, the version the replicator is built against.
find_bindir() {
	local initdb dir
	if initdb=$(command -v initdb) && [[ -x "$(dirname "$(readlink -f "$initdb")")/postgres" ]]; then
		dirname "$(readlink -f "$initdb")"
		return
	fi
	if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
		echo /usr/lib/postgresql/15/bin
		return
	fi
	# An unmatched glob stays literal and fails the -x test below.
	for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
		if [[ -x "$dir/initdb" && -x "$dir/postgres" ]]; then
			echo "$dir"
			return
		fi
	done
	return 1
}

if ! bindir=$(find_bindir); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "ensure-postgres: PostgreSQL is not installed and installing it needs root: run this script as root, or apt-get install postgresql" >&2
		exit 1
	fi
	echo "ensure-postgres: installing PostgreSQL from Debian's packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# Debian 12's postgresql-15 already contains contrib (it provides
	# postgresql-contrib-15), so the postgresql metapackage is enough.
	apt-get install -y -q --no-install-recommends postgresql
	# The package creates and may start a "main" cluster; stop whatever it
	# started, since the tests never use it.
	if command -v pg_lsclusters >/dev/null; then
		pg_lsclusters --no-header | while read -r version cluster _port status _rest; do
			if [[ $status == online* ]]; then
				pg_ctlcluster "$version" "$cluster" stop || true
			fi
		done
	fi
	bindir=$(find_bindir)
fi

# initdb and postgres refuse to run as root, so pgtest runs them as postgres.
if [[ $(id -u) -eq 0 ]] && ! id -u postgres >/dev/null 2>&1; then
	echo "ensure-postgres: creating the postgres user"
	useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

echo "ensure-postgres: $("$bindir/postgres" --version) in $bindir"
