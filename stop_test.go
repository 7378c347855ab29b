package replicator

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestIsCleanStop(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"no error", ended, nil, false},
		{"canceled, our context ended", ended, context.Canceled, true},
		{"wrapped cancel, our context ended", ended, fmt.Errorf("write batch: %w", context.Canceled), true},
		{"canceled, our context live", live, context.Canceled, false},
		{"other error, our context ended", ended, errors.New("connection reset"), false},
		{"deadline, our context ended", ended, context.DeadlineExceeded, false},
	} {
		if got := IsCleanStop(c.ctx, c.err); got != c.want {
			t.Errorf("%s: IsCleanStop = %t, want %t", c.name, got, c.want)
		}
	}
}
