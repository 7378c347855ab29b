package app

import "github.com/replicator-cdc/replicator/config"

// memoryHeadroom is what the daemon holds beside the changes in flight:
// the runtime, the replication and HTTP buffers, the requests being
// encoded, the catalog.
const memoryHeadroom = 32 << 20

// MemoryLimit is the soft heap limit for a daemon running cfg: the
// in-flight budget plus headroom. Without one the garbage collector lets
// the heap grow to twice what is live, so a full budget of 64 MiB made a
// resident size of about 125 MiB; with it the collector works harder only
// while the budget is full, that is while the targets, not this process,
// set the pace. main applies it unless GOMEMLIMIT is set.
func MemoryLimit(cfg *config.Config) int64 {
	return cfg.Pipeline.MaxInFlightBytes + memoryHeadroom
}
