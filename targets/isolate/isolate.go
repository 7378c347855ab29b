// Package isolate decides, from a target's answers, which records of a
// refused request are bad for good, and tells them apart from failures of
// the table or of the request as a whole, which are waited out and never
// rejected. Both writers use it; each only reads its API's answers into an
// Answer.
//
// A record is rejected only on evidence that isolates it:
//   - the answer names it, or pins it by a value only some records carry
//     (Answer.Bad);
//   - it was refused alone twice, with a healthy answer of the table in
//     between: a sibling part of the same request that landed, or else a
//     probe of the table. No single stretch of time in which the table
//     refuses everything can cover both refusals, so an outage that the
//     answers do not name (a bare "param is invalid") never turns a good
//     record into a rejection.
//
// Anything else that fails as a whole is the table's failure: the same
// request is sent again after a capped, jittered backoff, for as long as it
// takes, and the table is reported failing meanwhile. When splitting
// cannot tell, waiting wins over losing.
//
// Unnamed refusals are isolated by generalized binary splitting: a group
// refused as a whole is halved until one refused record stands alone, the
// halves that land stay landed, and the untested rest goes back to the pool,
// which is sent again in groups sized by the share of bad records seen so
// far (in full while none was found by splitting). The cost per bad record
// is about log2 of the good records per bad one plus one confirming resend,
// not 2·log2 of the batch.
package isolate

import (
	"context"
	"fmt"
	"time"

	"github.com/replicator-cdc/replicator/targets/backoff"
)

// Kind is what an answer says about a request.
type Kind int

const (
	// Landed: the request was applied; Bad lists items the answer names as
	// refused while the others landed.
	Landed Kind = iota
	// Refused: nothing is known to be applied. Bad lists the items the
	// answer pins down; the others are undecided.
	Refused
	// TableFailing: the answer is about the table or the request, not
	// about any item.
	TableFailing
)

// Answer is a target's verdict on one request.
type Answer struct {
	Kind Kind
	Bad  []Bad
	// Reason is the answer in words: the rejection reason of an item
	// isolated by splitting, and the table's failure in logs.
	Reason string
}

// Bad is an item an answer names as refused.
type Bad struct {
	Index  int // into the request's items
	Reason string
}

// Target writes items to one table.
type Target[T any] interface {
	// Send writes items in one request. An error ends the run: the
	// context ended, or a person must act.
	Send(ctx context.Context, items []T) (Answer, error)
	// Probe asks the table something that involves no item: Landed when
	// the table answers normally, TableFailing when it does not.
	Probe(ctx context.Context) (Answer, error)
}

// Rejection is an item the evidence isolates as refused for good.
type Rejection[T any] struct {
	Item   T
	Reason string
}

// FailingError ends a run whose table kept failing as a whole past
// Options.MaxRetries.
type FailingError struct {
	Table    string
	Attempts int
	Reason   string
}

func (e *FailingError) Error() string {
	return fmt.Sprintf("table %s failed as a whole %d times, last: %s", e.Table, e.Attempts, e.Reason)
}

// Options bound the waits for a failing table.
type Options struct {
	Table  string
	Health *Health
	// RetryMin and RetryMax bound the exponential backoff, jittered,
	// between attempts on a failing table.
	RetryMin, RetryMax time.Duration
	// MaxRetries ends the run with an error after that many waits for a
	// failing table in a row; 0 waits until the context ends.
	MaxRetries int
}

// Run writes items through t and returns the items isolated as refused.
// Every other item has landed when it returns without an error.
func Run[T any](ctx context.Context, t Target[T], items []T, opts Options) ([]Rejection[T], error) {
	r := &run[T]{t: t, opts: opts}
	err := r.drain(ctx, items)
	return r.rejected, err
}

type run[T any] struct {
	t        Target[T]
	opts     Options
	rejected []Rejection[T]
	landed   int
	// split counts the items isolated by splitting, which sizes the groups.
	split int
	// seq numbers the answers; healthyAt is the last that showed the
	// table healthy (a landed request, a probe that succeeded).
	seq, healthyAt int
	// suspects were refused alone, once, without naming.
	suspects []suspect[T]
	waits    int
}

type suspect[T any] struct {
	item T
	at   int // seq of the refusal
}

// drain sends the pool until every item has landed or is rejected.
func (r *run[T]) drain(ctx context.Context, pool []T) error {
	for len(pool) > 0 {
		n := r.groupSize(len(pool))
		group, rest := pool[:n], pool[n:]
		a, err := r.send(ctx, group)
		if err != nil {
			return err
		}
		undecided := r.settle(group, a)
		var untested []T
		switch {
		case a.Kind == Landed:
		case len(a.Bad) > 0:
			untested = undecided
		case len(group) == 1:
			r.suspect(group[0])
		default:
			untested, err = r.findOne(ctx, group)
		}
		if err != nil {
			return err
		}
		pool = append(untested, rest...)
	}
	for _, s := range r.suspects {
		if err := r.confirm(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// groupSize is the next group to send from a pool of n: all of it until
// splitting has found a bad item, then Hwang's 2^⌊log2((n-d+1)/d)⌋ for the
// d bad items the share seen so far predicts.
func (r *run[T]) groupSize(n int) int {
	if r.split == 0 {
		return n
	}
	d := max(1, (r.split*n+r.split+r.landed-1)/(r.split+r.landed))
	if n <= 2*d-2 {
		return 1
	}
	size := 1
	for size*2 <= (n-d+1)/d {
		size *= 2
	}
	return min(size, n)
}

// findOne halves group, which was refused without naming an item, until
// one refused item stands alone. It returns the items it did not test.
func (r *run[T]) findOne(ctx context.Context, group []T) ([]T, error) {
	var untested []T
	for len(group) > 1 {
		left, right := group[:len(group)/2], group[len(group)/2:]
		a, err := r.send(ctx, left)
		if err != nil {
			return nil, err
		}
		undecided := r.settle(left, a)
		switch {
		case a.Kind == Landed:
			// The refusal of the whole lies in the right half.
			group = right
			if len(group) == 1 {
				return untested, r.single(ctx, group[0])
			}
			continue
		case len(a.Bad) > 0:
			return append(append(untested, undecided...), right...), nil
		}
		untested = append(untested, right...)
		group = left
	}
	r.suspect(group[0])
	return untested, nil
}

// single sends one item alone.
func (r *run[T]) single(ctx context.Context, item T) error {
	_, refused, err := r.alone(ctx, item)
	if err == nil && refused {
		r.suspect(item)
	}
	return err
}

// alone sends item by itself and settles an answer that decides it;
// refused says the answer refused it without naming it.
func (r *run[T]) alone(ctx context.Context, item T) (a Answer, refused bool, err error) {
	items := []T{item}
	if a, err = r.send(ctx, items); err != nil {
		return a, false, err
	}
	if a.Kind == Landed || len(a.Bad) > 0 {
		r.settle(items, a)
		return a, false, nil
	}
	return a, true, nil
}

// suspect notes an item refused alone without naming; confirm decides it
// once the rest has gone.
func (r *run[T]) suspect(item T) {
	r.suspects = append(r.suspects, suspect[T]{item: item, at: r.seq})
	// Counted as found, so that the next groups are sized to land.
	r.split++
}

// confirm sends a suspect alone again once an answer after its refusal
// showed the table healthy (probing for one if need be), and rejects it if
// it is refused again.
func (r *run[T]) confirm(ctx context.Context, s suspect[T]) error {
	for r.healthyAt <= s.at {
		sent := time.Now()
		p, err := r.t.Probe(ctx)
		if err != nil {
			return err
		}
		r.seq++
		if p.Kind == Landed {
			r.healthyAt = r.seq
			break
		}
		if err := r.wait(ctx, p.Reason, sent); err != nil {
			return err
		}
	}
	a, refused, err := r.alone(ctx, s.item)
	if err == nil && refused {
		r.rejected = append(r.rejected, Rejection[T]{Item: s.item, Reason: a.Reason})
	}
	return err
}

// send makes one request, waiting out answers about the table and sending
// the same request again.
func (r *run[T]) send(ctx context.Context, items []T) (Answer, error) {
	for {
		sent := time.Now()
		a, err := r.t.Send(ctx, items)
		if err != nil {
			return a, err
		}
		r.seq++
		if a.Kind == Landed {
			r.healthyAt, r.waits = r.seq, 0
			r.opts.Health.OK(r.opts.Table, sent)
		}
		if a.Kind != TableFailing {
			return a, nil
		}
		if err := r.wait(ctx, a.Reason, sent); err != nil {
			return a, err
		}
	}
}

// settle records the items a named as bad and returns the others: items
// itself when it named none.
func (r *run[T]) settle(items []T, a Answer) []T {
	if len(a.Bad) == 0 {
		if a.Kind == Landed {
			r.landed += len(items)
		}
		return items
	}
	bad := make(map[int]string, len(a.Bad))
	for _, b := range a.Bad {
		if b.Index >= 0 && b.Index < len(items) {
			bad[b.Index] = b.Reason
		}
	}
	var rest []T
	for i, it := range items {
		if reason, ok := bad[i]; ok {
			r.rejected = append(r.rejected, Rejection[T]{Item: it, Reason: reason})
			continue
		}
		rest = append(rest, it)
	}
	if a.Kind == Landed {
		r.landed += len(rest)
	}
	return rest
}

// wait reports the table failing and sleeps before the next attempt.
func (r *run[T]) wait(ctx context.Context, reason string, sent time.Time) error {
	r.waits++
	r.opts.Health.Failing(r.opts.Table, reason, sent)
	if r.opts.MaxRetries > 0 && r.waits > r.opts.MaxRetries {
		return &FailingError{Table: r.opts.Table, Attempts: r.waits, Reason: reason}
	}
	return backoff.Sleep(ctx, backoff.Delay(r.opts.RetryMin, r.opts.RetryMax, r.waits))
}
