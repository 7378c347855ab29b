package replication

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The low-water mark rises only while the stream brings coalesceBytes per
// coalesceWindow, falls when it slows or a read waits in vain, and each
// change costs one setsockopt.
func TestCoalescerFollowsTheStreamRate(t *testing.T) {
	type step struct {
		at      time.Duration // since the start
		bytes   int           // -1: a read waited in vain
		wantSet []int         // the marks set by this step
	}
	fast := coalesceBytes / 4 // four of these per window is the threshold
	tests := []struct {
		name  string
		steps []step
	}{
		{"a fast stream raises the mark once", []step{
			{1 * time.Millisecond, fast, nil},
			{2 * time.Millisecond, fast, nil},
			{3 * time.Millisecond, fast, nil},
			{5 * time.Millisecond, fast, []int{coalesceBytes}},
			{10 * time.Millisecond, coalesceBytes, nil},
			{15 * time.Millisecond, coalesceBytes, nil},
		}},
		{"a slow stream leaves it alone", []step{
			{2 * time.Millisecond, 100, nil},
			{6 * time.Millisecond, 100, nil},
			{12 * time.Millisecond, 100, nil},
		}},
		{"a stream that slows lowers it", []step{
			{5 * time.Millisecond, coalesceBytes, []int{coalesceBytes}},
			{25 * time.Millisecond, coalesceBytes, []int{1}},
		}},
		{"a read waiting in vain lowers it and starts a new window", []step{
			{5 * time.Millisecond, coalesceBytes, []int{coalesceBytes}},
			{205 * time.Millisecond, -1, []int{1}},
			{206 * time.Millisecond, coalesceBytes, nil},
			{210 * time.Millisecond, coalesceBytes, []int{coalesceBytes}},
		}},
		{"a quiet stream waiting in vain sets nothing", []step{
			{200 * time.Millisecond, -1, nil},
			{400 * time.Millisecond, -1, nil},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var set []int
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			c := &coalescer{setLowat: func(n int) error { set = append(set, n); return nil }, windowStart: start}
			for i, s := range tt.steps {
				set = nil
				if s.bytes < 0 {
					c.waited(start.Add(s.at))
				} else {
					c.received(start.Add(s.at), s.bytes)
				}
				require.Equal(t, s.wantSet, set, "step %d", i)
			}
		})
	}
}

// A socket that refuses the mark is read as before, and asked no more.
func TestCoalescerGivesUpOnARefusingSocket(t *testing.T) {
	calls := 0
	start := time.Now()
	c := &coalescer{setLowat: func(int) error { calls++; return errors.New("refused") }, windowStart: start}
	for i := 1; i <= 10; i++ {
		c.received(start.Add(time.Duration(i)*coalesceWindow), coalesceBytes)
	}
	c.waited(start.Add(time.Second))
	require.Equal(t, 1, calls)
	require.False(t, c.raised)
}
