package feishu

import (
	"context"
	"fmt"
	"time"

	"github.com/replicator-cdc/replicator/targets/backoff"
)

// Lease is how long this instance may still save its tokens: the active
// instance's lock lease, which fences the token store (the app's fence
// implements it). A refresh spends the refresh token the moment Feishu
// receives it, and only the saved answer keeps its successor: should the
// lease end during a refresh, the save of the new pair would be refused
// and the instance taking over would find only the spent token. So under
// a Lease a refresh is sent only when the lease lasts its whole deadline
// plus leaseSaveShare, and its deadline ends there.
type Lease interface {
	// Left is how long the lease lasts from now, or the error that ended
	// it for good.
	Left() (time.Duration, error)
}

const (
	// leaseSaveShare is the end of the lease kept for saving a refresh's
	// answer, which starts right after the answer and is refused once the
	// lease has ended.
	leaseSaveShare = time.Second
	// minRefreshTime is the shortest deadline a refresh is sent with
	// (the token endpoint answers within a fraction of a second); a lease
	// with less left is waited on until it is renewed (the app's is
	// renewed every second, to 4 s) or ends.
	minRefreshTime = time.Second
	// leasePoll is how often a lease too short for a refresh is asked
	// again.
	leasePoll = 50 * time.Millisecond
)

// refreshDeadline waits until the lease covers a refresh and the save of
// its answer, and returns the refresh's deadline; zero without a lease.
// It fails when the lease ends for good, or ctx does.
func (o *oauthTokens) refreshDeadline(ctx context.Context) (time.Time, error) {
	if o.cfg.Lease == nil {
		return time.Time{}, nil
	}
	for {
		// Read the clock first: the deadline errs on the early side.
		now := time.Now()
		left, err := o.cfg.Lease.Left()
		if err != nil {
			return time.Time{}, fmt.Errorf("feishu target %q: the access token is not refreshed: %w", o.cfg.Name, err)
		}
		if left-leaseSaveShare >= minRefreshTime {
			return now.Add(left - leaseSaveShare), nil
		}
		if err := backoff.Sleep(ctx, leasePoll); err != nil {
			return time.Time{}, err
		}
	}
}

// refresh spends the refresh token for a new pair, under the lease: each
// try with a deadline the lease covers. A try the deadline cut short is
// made again under a renewed lease, as a request that timed out is.
func (o *oauthTokens) refresh(ctx context.Context, token string) (tokenFile, error) {
	for attempt := 1; ; attempt++ {
		deadline, err := o.refreshDeadline(ctx)
		if err != nil {
			return tokenFile{}, err
		}
		grant := map[string]string{"grant_type": "refresh_token", "refresh_token": token}
		if deadline.IsZero() {
			return o.tok.exchange(ctx, grant)
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		next, err := o.tok.exchange(rctx, grant)
		cut := err != nil && rctx.Err() != nil && ctx.Err() == nil
		cancel()
		if !cut {
			return next, err
		}
		if o.cfg.MaxRetries > 0 && attempt > o.cfg.MaxRetries {
			return tokenFile{}, fmt.Errorf("feishu target %q: the token endpoint did not answer a refresh within the time the lease left for it, %d times: check the network to %s", o.cfg.Name, attempt, o.cfg.BaseURL)
		}
		o.tok.log.Warn("feishu: a token refresh got no answer within the time the lease left for it; trying again under a renewed lease",
			"attempt", attempt, "deadline", deadline)
	}
}
