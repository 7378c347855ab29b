package fakekit

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Unix(1000, 0)

func ms(m int) time.Time { return t0.Add(time.Duration(m) * time.Millisecond) }

func TestMaxPerWindow(t *testing.T) {
	for _, tc := range []struct {
		ms   []int
		want int
	}{
		{nil, 0},
		{[]int{0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000}, 10},
		{[]int{1500, 0, 999, 1200}, 3},
		{[]int{0, 200, 400, 600, 800, 1000}, 5},
		{[]int{0, 200, 400, 600, 800, 999}, 6},
		{[]int{500, 0, 2000, 1400}, 2},
	} {
		if got := MaxPerWindow(tc.ms, ms, time.Second); got != tc.want {
			t.Errorf("%v: got %d, want %d", tc.ms, got, tc.want)
		}
	}
}

func TestWindowAdmit(t *testing.T) {
	var w Window
	for _, m := range []int{0, 300, 100} {
		if _, ok := w.Admit(ms(m), 3); !ok {
			t.Fatalf("request at %dms refused below the limit", m)
		}
	}
	// The oldest admitted request, at 0ms, leaves the window at 1000ms.
	if wait, ok := w.Admit(ms(400), 3); ok || wait != 600*time.Millisecond {
		t.Errorf("4th request in the second: admitted %v, wait %v; want refused, wait 600ms", ok, wait)
	}
	if _, ok := w.Admit(ms(1000), 3); !ok {
		t.Error("request once the oldest left the window refused")
	}
	if _, ok := w.Admit(ms(1001), 3); ok {
		t.Error("refused request was counted: 100, 300 and 1000ms are in the window")
	}
	var open Window
	for range 10 {
		if _, ok := open.Admit(t0, -1); !ok {
			t.Fatal("a negative limit refused a request")
		}
	}
}

func TestFaultsOrder(t *testing.T) {
	f := NewFaults[int](1)
	if got := f.Next(); got != 0 {
		t.Fatalf("nothing queued: got %d, want 0", got)
	}
	f.SetRate(1, 7)
	f.Queue(1, 2)
	var got []int
	for range 3 {
		got = append(got, f.Next())
	}
	if want := []int{1, 2, 7}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v: queued faults first, then the random ones", got, want)
	}
	f.SetRate(0)
	if got := f.Next(); got != 0 {
		t.Errorf("rate 0: got %d, want 0", got)
	}
}

func TestEarly(t *testing.T) {
	type req struct {
		arrived, answered int
		reset             time.Duration
	}
	reqs := []req{
		{0, 10, time.Second}, // throttled until 1010ms
		{20, 30, 0},          // early
		{1010, 1020, 0},      // at the reset: not early
		{5, 15, 0},           // arrived before the answer went out
	}
	got := Early(reqs, func(r req) (time.Time, time.Time, time.Duration) { return ms(r.arrived), ms(r.answered), r.reset })
	if len(got) != 1 || got[0] != reqs[1] {
		t.Errorf("got %v, want only the request at 20ms", got)
	}
}
