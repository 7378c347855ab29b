package pipeline

import (
	"context"
	"sync"
	"time"
)

// budget bounds the bytes of records in flight, from the reader to the
// targets' confirmations. The reader waits on it (backpressure) while the
// replication slot holds the WAL.
type budget struct {
	mu       sync.Mutex
	capacity int64
	used     int64
	freed    chan struct{} // closed and replaced on every release
}

func newBudget(capacity int64) *budget {
	return &budget{capacity: capacity, freed: make(chan struct{})}
}

// tryAcquire takes n bytes if they fit. A record larger than the whole
// budget fits once nothing else is in flight, so it cannot wedge the reader.
func (b *budget) tryAcquire(n int64) (bool, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n <= b.capacity || b.used == 0 {
		b.used += n
		return true, nil
	}
	return false, b.freed
}

// acquire waits for n bytes, updating status at least every interval while
// it waits, and returns early on ctx (the caller's stop signal), on stop
// (the pipeline's end) or a status update's error.
func (b *budget) acquire(ctx context.Context, stop <-chan struct{}, n int64, interval time.Duration, updateStatus StatusUpdate) error {
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		ok, freed := b.tryAcquire(n)
		if ok {
			return nil
		}
		select {
		case <-freed:
		case <-timer.C:
			timer.Reset(interval)
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return context.Canceled
		}
		if err := updateStatus(); err != nil {
			return err
		}
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
}

func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
