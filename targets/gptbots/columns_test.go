package gptbots_test

import (
	"testing"
)

func TestTargetColumns(t *testing.T) {
	h := newHarness(t, nil)
	columns, required, err := h.w.TargetColumns(ctx(t), table)
	if err != nil {
		t.Fatal(err)
	}
	if len(columns) != len(fields) {
		t.Fatalf("columns %v, want the %d fields of the table", columns, len(fields))
	}
	for i, f := range fields {
		if columns[i] != f.Name {
			t.Errorf("column %d is %q, want %q", i, columns[i], f.Name)
		}
	}
	if required != nil {
		t.Errorf("GPTBots has no NOT NULL fields, got required %v", required)
	}
}
