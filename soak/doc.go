// Package soak holds the soak test, which runs only with the soak build tag
// (make soak): the daemon built from cmd/replicator, run as a process
// against a real PostgreSQL and both fake targets with faults, under a
// pgbench-style load and a schedule of kill -9s, server restarts,
// terminated connections and a target outage; at the end every mirror must
// equal its source.
package soak
