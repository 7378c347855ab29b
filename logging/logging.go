// Package logging builds the daemon's logger: text on a terminal, JSON
// elsewhere, and repeats of the same warning or error held back so that a
// target that is down for an hour does not fill the disk with one line.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// New returns a logger writing to w. format is auto, text or json; auto
// picks text when w is a terminal.
func New(w io.Writer, level, format string, window time.Duration) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "auto" || format == "" {
		format = "json"
		if IsTerminal(w) {
			format = "text"
		}
	}
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		opts.ReplaceAttr = durationsAsText
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(NewDedup(h, window))
}

// durationsAsText writes durations as "1.5s" rather than the JSON
// handler's nanosecond integers, which nobody reading a log can take in.
func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// IsTerminal reports whether w is a character device.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// maxTracked bounds the distinct messages remembered.
const maxTracked = 1000

type seen struct {
	first      time.Time
	suppressed int
}

type dedupState struct {
	mu      sync.Mutex
	window  time.Duration
	now     func() time.Time
	entries map[string]*seen
}

// Dedup passes a warning or error through once per window per distinct
// message and attributes; the next one passed carries how many were held.
type Dedup struct {
	next   slog.Handler
	state  *dedupState
	prefix string // attributes added with WithAttrs, part of the identity
}

// NewDedup wraps next.
func NewDedup(next slog.Handler, window time.Duration) *Dedup {
	return &Dedup{next: next, state: &dedupState{window: window, now: time.Now, entries: map[string]*seen{}}}
}

// Enabled implements slog.Handler.
func (d *Dedup) Enabled(ctx context.Context, l slog.Level) bool { return d.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (d *Dedup) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn || d.state.window <= 0 {
		return d.next.Handle(ctx, r)
	}
	var b strings.Builder
	b.WriteString(d.prefix)
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString("\x00" + a.String())
		return true
	})
	key := b.String()
	s := d.state
	s.mu.Lock()
	now := s.now()
	e, ok := s.entries[key]
	if ok && now.Sub(e.first) < s.window {
		e.suppressed++
		s.mu.Unlock()
		return nil
	}
	held := 0
	if ok {
		held = e.suppressed
	}
	if len(s.entries) >= maxTracked {
		for k, v := range s.entries {
			if now.Sub(v.first) >= s.window {
				delete(s.entries, k)
			}
		}
	}
	s.entries[key] = &seen{first: now}
	s.mu.Unlock()
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", held))
	}
	return d.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (d *Dedup) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(d.prefix)
	for _, a := range attrs {
		b.WriteString(a.String() + "\x00")
	}
	return &Dedup{next: d.next.WithAttrs(attrs), state: d.state, prefix: b.String()}
}

// WithGroup implements slog.Handler.
func (d *Dedup) WithGroup(name string) slog.Handler {
	return &Dedup{next: d.next.WithGroup(name), state: d.state, prefix: d.prefix + name + "."}
}
