package gptbots

import (
	"testing"
	"time"
)

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
