package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDedupHoldsRepeatsWithinTheWindow(t *testing.T) {
	var buf bytes.Buffer
	d := NewDedup(slog.NewTextHandler(&buf, nil), time.Minute)
	now := time.Unix(1000, 0)
	d.state.now = func() time.Time { return now }
	log := slog.New(d).With("target", "lark")
	for i := 0; i < 5; i++ {
		log.Warn("request failed; retrying", "error", errors.New("HTTP 503"))
	}
	log.Warn("request failed; retrying", "error", errors.New("HTTP 429"))
	log.Info("progress")
	log.Info("progress")
	require.Equal(t, 4, strings.Count(buf.String(), "\n"), "one line per distinct warning, every info line:\n%s", buf.String())

	now = now.Add(2 * time.Minute)
	log.Warn("request failed; retrying", "error", errors.New("HTTP 503"))
	require.Contains(t, buf.String(), "repeated=4", "the next line says how many were held")
	slog.New(d).With("target", "bots").Warn("request failed; retrying", "error", errors.New("HTTP 503"))
	require.Contains(t, buf.String(), "target=bots", "another target's identical warning is its own line")
}

func TestNewPicksJSONOffTerminal(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, "info", "auto", time.Minute).Info("hello", "k", 1)
	require.True(t, strings.HasPrefix(buf.String(), "{"), buf.String())
	buf.Reset()
	New(&buf, "warn", "text", time.Minute).Info("hidden")
	require.Empty(t, buf.String())
}

func TestJSONDurationsAreReadable(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, "info", "json", time.Minute).With("timeout", 30*time.Second).WithGroup("g").Info("stopping", "elapsed", 1500*time.Millisecond, "n", 7)
	var line struct {
		Timeout string `json:"timeout"`
		G       struct {
			Elapsed string `json:"elapsed"`
			N       int    `json:"n"`
		} `json:"g"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	require.Equal(t, "30s", line.Timeout)
	require.Equal(t, "1.5s", line.G.Elapsed)
	require.Equal(t, 7, line.G.N, "other values keep their type")
}
