package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelayBounds(t *testing.T) {
	for n := 0; n < 40; n++ {
		d := Delay(10*time.Millisecond, time.Second, n)
		ceiling := min(time.Second, 10*time.Millisecond<<min(max(n, 1)-1, 31))
		if d < ceiling/2 || d > ceiling {
			t.Fatalf("attempt %d: %v outside [%v, %v]", n, d, ceiling/2, ceiling)
		}
	}
	if d := Delay(0, 0, 3); d != 0 {
		t.Fatalf("no backoff configured, got %v", d)
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Fatalf("a zero sleep failed: %v", err)
	}
}
