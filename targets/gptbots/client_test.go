package gptbots

import (
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	w, err := New(Config{APIKey: "k", BackoffMin: 10 * time.Second, BackoffMax: time.Minute}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 100; attempt++ {
		ceiling := time.Minute
		if attempt <= 3 {
			ceiling = 10 * time.Second << (attempt - 1)
		}
		for range 20 {
			if d := w.backoff(attempt); d <= 0 || d > ceiling {
				t.Fatalf("attempt %d: backoff %v outside (0, %v]", attempt, d, ceiling)
			}
		}
	}
}

func TestRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"":                              0,
		"2":                             2 * time.Second,
		" 1 ":                           time.Second,
		"-1":                            0,
		"soon":                          0,
		"99999999":                      time.Hour,
		"Wed, 21 Oct 2015 07:28:00 GMT": 0,
	} {
		if got := retryAfter(in); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}
