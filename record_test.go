package replicator

import "testing"

func TestAbbreviate(t *testing.T) {
	tests := []struct {
		name, in string
		limit    int
		want     string
	}{
		{"short stays", "abc", 3, "abc"},
		{"long is cut and its length noted", "abcdef", 3, "abc…(6 bytes)"},
		{"never inside a character", "aé", 2, "a…(3 bytes)"},
		{"a character at the cut stays whole", "éé", 2, "é…(4 bytes)"},
		{"empty", "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Abbreviate(tt.in, tt.limit); got != tt.want {
				t.Errorf("Abbreviate(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
			}
		})
	}
}
