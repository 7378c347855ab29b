//go:build soak

package soak

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// The pgbench tables, scaled down, with an id for history so that its rows
// can be mirrored and deleted.
const schemaSQL = `
CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int NOT NULL, filler text NOT NULL);
CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int NOT NULL, tbalance int NOT NULL, filler text NOT NULL);
CREATE TABLE pgbench_accounts (aid bigint PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler text NOT NULL);
CREATE TABLE pgbench_history (hid bigserial PRIMARY KEY, tid int NOT NULL, bid int NOT NULL, aid bigint NOT NULL, delta int NOT NULL);
INSERT INTO pgbench_branches SELECT g, 0, 'branch ' || g FROM generate_series(1, 5) g;
INSERT INTO pgbench_tellers SELECT g, 1 + g % 5, 0, 'teller ' || g FROM generate_series(1, 50) g;
INSERT INTO pgbench_accounts SELECT g, 1 + g % 5, 0, 'account ' || g FROM generate_series(1, 20000) g;
`

const (
	branches = 5
	tellers  = 50
	accounts = 20000
)

// load runs pgbench's TPC-B-like transaction, plus new accounts, deleted
// accounts and pruned history, from one connection that it opens again
// whenever the server goes away.
type load struct {
	dsn       string
	rng       *rand.Rand
	commits   atomic.Int64
	failures  atomic.Int64
	nextAcct  int64
	conn      *pgx.Conn
	throttled time.Duration
}

func newLoad(dsn string, seed uint64, firstAccount int64) *load {
	return &load{dsn: dsn, rng: rand.New(rand.NewPCG(seed, seed^0xabcdef)), nextAcct: firstAccount, throttled: 10 * time.Millisecond}
}

// run makes changes until ctx ends.
func (l *load) run(ctx context.Context) {
	defer func() {
		if l.conn != nil {
			l.conn.Close(context.Background())
		}
	}()
	for ctx.Err() == nil {
		if l.conn == nil || l.conn.IsClosed() {
			c, err := pgx.Connect(ctx, l.dsn)
			if err != nil {
				l.failures.Add(1)
				sleep(ctx, 200*time.Millisecond)
				continue
			}
			l.conn = c
		}
		if err := l.transaction(ctx); err != nil {
			l.failures.Add(1)
			l.conn.Close(context.Background())
			l.conn = nil
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		l.commits.Add(1)
		sleep(ctx, l.throttled)
	}
}

func (l *load) transaction(ctx context.Context) error {
	tx, err := l.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	aid := 1 + l.rng.Int64N(accounts)
	tid := 1 + l.rng.IntN(tellers)
	bid := 1 + l.rng.IntN(branches)
	delta := l.rng.IntN(10001) - 5000
	stmts := []struct {
		sql  string
		args []any
	}{
		{`UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2`, []any{delta, aid}},
		{`UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2`, []any{delta, tid}},
		{`UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2`, []any{delta, bid}},
		{`INSERT INTO pgbench_history (tid, bid, aid, delta) VALUES ($1, $2, $3, $4)`, []any{tid, bid, aid, delta}},
	}
	switch l.rng.IntN(20) {
	case 0:
		l.nextAcct++
		stmts = append(stmts, struct {
			sql  string
			args []any
		}{`INSERT INTO pgbench_accounts VALUES ($1, $2, 0, 'new account') ON CONFLICT DO NOTHING`, []any{l.nextAcct, bid}})
	case 1:
		stmts = append(stmts, struct {
			sql  string
			args []any
		}{`DELETE FROM pgbench_accounts WHERE aid = $1`, []any{1 + l.rng.Int64N(accounts)}})
	case 2:
		stmts = append(stmts, struct {
			sql  string
			args []any
		}{`DELETE FROM pgbench_history WHERE hid IN (SELECT hid FROM pgbench_history WHERE tid = $1 ORDER BY hid LIMIT 5)`, []any{tid}})
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
