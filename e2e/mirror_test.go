package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mirrorTimeout bounds the wait for the mirror to converge; at the
// targets' rates with faults it takes seconds, not minutes.
const mirrorTimeout = 4 * time.Minute

// TestMirrorWithFaults runs the daemon in-process from a real PostgreSQL
// to each target's fake, which fails a tenth or more of the record writes
// (the target's own mix: 5xx, 502 from a proxy, answers slower than the
// request timeout, dropped connections, throttling) and applies some more
// but loses the answer; the GPTBots fake also refuses every name starting
// with "reject-". A snapshot of thousands of rows, then random inserts,
// updates (some leaving an out-of-line value unchanged), deletes, NULLs
// and key changes, with a stop and restart on the same state in the middle
// and changes made while the daemon is down, must end with the target
// table equal to the source value for value (refused rows aside), the
// refusals exactly the dead letters, the target's rate limit kept, and
// the credential never in the log.
func TestMirrorWithFaults(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		src, fk, values := begin(t, tg, 3000, 42, true)
		db := src.db
		fk.faults(tg.faultRate)
		cfg, stateDir := daemonConfig(t, src, fk, 100, tg.shutdown)
		logger, logs := daemonLogger(t)

		started := time.Now()
		d := startRun(t, cfg, logger)
		w := newWorkload(db, values, 1, 3001)
		// The first changes race the snapshot, the rest follow it.
		require.NoError(t, w.run(ctx, 150, 20*time.Millisecond))
		waitStreaming(t, src, d.exited, 2*time.Minute)
		// One of each fault while streaming, so that every kind certainly
		// hits a write, whatever the random draws.
		fk.injectEach()
		require.NoError(t, w.run(ctx, 150, 30*time.Millisecond))

		// A stop in the middle, as on SIGTERM: it drains within the bound
		// and returns nil.
		require.NoError(t, d.stop(tg.shutdown+15*time.Second), "a stop drains and returns nil")
		// Changes made while the daemon is down wait in the slot.
		require.NoError(t, w.run(ctx, 80, 0))

		d = startRun(t, cfg, logger)
		require.NoError(t, w.run(ctx, 300, 30*time.Millisecond))
		waitMirror(t, db, tg, fk, mirrorTimeout, d.exited)
		slotCatchesUp(t, src, time.Minute, d.exited)
		require.NoError(t, d.stop(tg.shutdown+15*time.Second))
		elapsed := time.Since(started)

		rows, err := sourceRows(ctx, db)
		require.NoError(t, err)
		fk.checkDeadLetters(t, stateDir, rows)
		faults := fk.writeFaults()
		t.Logf("%d changes in %s; %s; faults on writes: %v; daemon log:%s",
			w.runs, elapsed.Round(time.Millisecond), fk.checkRequests(t), faults, logSummary(logs.String()))
		for _, f := range fk.faultKinds() {
			assert.Positive(t, faults[f], "fault %s never hit a write", f)
		}
		_, secret := fk.secret()
		assert.NotContains(t, logs.String(), secret, "the credential leaked into the log")
		var toasted int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM items WHERE length(big) > 4000`).Scan(&toasted))
		assert.Positive(t, toasted, "the workload must keep out-of-line values around")
	})
}

// TestSurvivesSIGKILL runs the built binary and kills it with SIGKILL five
// times at random points (during the snapshot and while streaming) while
// the source keeps changing, restarting it on the same state each time; a
// last run must bring the target table to the source's state, and SIGTERM
// must then stop it within the drain bound with exit code 0.
func TestSurvivesSIGKILL(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		src, fk, values := begin(t, tg, 3000, 7, false)
		db := src.db
		fk.faults(0.05)
		const shutdown = 5 * time.Second
		bin := newBinary(t, src, fk, 50, shutdown, nil)

		writes := startWriting(t, src.dsn, values, 2, 3001)
		// The kill points differ from run to run, to cover more of them
		// over time; the seed is logged to replay a failure's timing.
		seed := uint64(time.Now().UnixNano())
		t.Logf("kill delay seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, 4))
		for i := range 5 {
			p := bin.start(t, fmt.Sprintf("run %d, killed", i+1))
			delay := 500*time.Millisecond + time.Duration(rng.Int64N(int64(3500*time.Millisecond)))
			select {
			case <-p.Done():
				t.Fatalf("run %d exited on its own before the kill: %v", i+1, p.Err())
			case <-time.After(delay):
			}
			require.NoError(t, p.kill(10*time.Second))
			t.Logf("run %d killed after %s", i+1, delay.Round(time.Millisecond))
		}
		changes := writes.stop(t)

		p := bin.start(t, "final run")
		waitMirror(t, db, tg, fk, mirrorTimeout, p.exited)
		slotCatchesUp(t, src, 30*time.Second, p.exited)
		// The drain bound, plus the time to send the last status update
		// and close connections.
		stopped := p.terminate(t, shutdown+3*time.Second)

		log := bin.log(t)
		requireNoDeadLetters(t, bin.stateDir)
		// The final state must hold however it was reached; show it anyway.
		problems, _, err := mirrorDiff(ctx, db, tg, fk)
		require.NoError(t, err)
		require.Empty(t, problems)
		// Runs killed and started again may together outrun a rate limit
		// (each keeps its own), so the requests are shown, not checked.
		t.Logf("%d changes; SIGTERM exit after %s; faults on writes: %v; daemon log:%s",
			changes, stopped.Round(time.Millisecond), fk.writeFaults(), logSummary(log))
	})
}
