package replication

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

func TestParseSettingDuration(t *testing.T) {
	good := map[string]time.Duration{
		"60s": time.Minute, "1min": time.Minute, "500ms": 500 * time.Millisecond, "0": 0,
		"2h": 2 * time.Hour, "1d": 24 * time.Hour, "250us": 250 * time.Microsecond,
	}
	for in, want := range good {
		got, err := parseSettingDuration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "soon", "5", "10 parsecs", "-1s"} {
		_, err := parseSettingDuration(in)
		require.Error(t, err, in)
	}
}

func TestSilenceBounds(t *testing.T) {
	tests := []struct {
		timeout time.Duration
		want    silence
	}{
		{time.Minute, silence{probe: 30 * time.Second, stale: 45 * time.Second, dead: time.Minute}},
		{0, silence{probe: 30 * time.Second, stale: 45 * time.Second, dead: time.Minute}},
		{time.Millisecond, silence{probe: time.Second, stale: 1500 * time.Millisecond, dead: 2 * time.Second}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, silenceFor(tt.timeout), "wal_sender_timeout %s", tt.timeout)
	}
}

// Connecting gives up after a while unless the DSN chooses how long.
func TestConnectTimeout(t *testing.T) {
	for dsn, want := range map[string]time.Duration{
		"host=127.0.0.1":                            defaultConnectTimeout,
		"host=127.0.0.1 connect_timeout=3":          3 * time.Second,
		"postgres://127.0.0.1/db?connect_timeout=7": 7 * time.Second,
	} {
		cfg, err := pgconn.ParseConfig(dsn)
		require.NoError(t, err)
		configureDial(cfg)
		require.Equal(t, want, cfg.ConnectTimeout, dsn)
	}
}
