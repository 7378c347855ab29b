package app

import "testing"

func TestKeepSizeBytes(t *testing.T) {
	cases := map[string]int64{"-1": -1 << 20, "1024kB": 1 << 20, "512MB": 512 << 20, "1GB": 1 << 30, "2TB": 2 << 40, "100": 100 << 20}
	for in, want := range cases {
		got, err := keepSizeBytes(in)
		if err != nil || got != want {
			t.Errorf("keepSizeBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := keepSizeBytes("lots"); err == nil {
		t.Error("keepSizeBytes accepted a value without a number")
	}
}
