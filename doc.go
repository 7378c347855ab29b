// Package replicator holds the domain types shared by the replication reader,
// the mapping layer and the target writers: values, records, batches and the
// Writer contract. Nothing here talks to a network; every other package
// depends on this one and never the reverse.
package replicator
