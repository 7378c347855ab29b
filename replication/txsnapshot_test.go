package replication

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTxSnapshotVisible(t *testing.T) {
	tests := []struct {
		name string
		snap string
		xid  uint32
		want bool
	}{
		{"before xmin", "100:110:105", 99, true},
		{"between, finished", "100:110:105", 104, true},
		{"between, in progress", "100:110:105", 105, false},
		{"at xmax", "100:110:105", 110, false},
		{"after xmax", "100:110:105", 200, false},
		{"xmin itself in progress", "100:110:100,105", 100, false},
		{"empty snapshot, older", "740:740:", 739, true},
		{"empty snapshot, same", "740:740:", 740, false},
		{"across an epoch, old id", "4294967290:4294967300:4294967295", 4294967280, true},
		{"across an epoch, in progress", "4294967290:4294967300:4294967295", 4294967295, false},
		{"across an epoch, new epoch finished", "4294967290:4294967300:4294967295", 2, true},
		{"across an epoch, new epoch at xmax", "4294967290:4294967300:4294967295", 4, false},
		{"long ago", "5:10:", uint32(1 << 31), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap, err := ParseTxSnapshot(tc.snap)
			require.NoError(t, err)
			require.Equal(t, tc.snap, snap.String())
			require.Equal(t, tc.want, snap.Visible(tc.xid))
		})
	}
}

func TestParseTxSnapshotRejects(t *testing.T) {
	for _, s := range []string{"", "1:2", "a:2:", "1:b:", "3:2:", "1:2:x", "1:2:3,", "1:2:3:4"} {
		_, err := ParseTxSnapshot(s)
		require.Error(t, err, "%q", s)
	}
}

func FuzzParseTxSnapshot(f *testing.F) {
	for _, s := range []string{"100:110:105", "740:740:", "1:5:2,3,4", "4294967290:4294967300:4294967295", ":::", "1:2:,"} {
		f.Add(s, uint32(104))
	}
	f.Fuzz(func(t *testing.T, s string, xid uint32) {
		snap, err := ParseTxSnapshot(s)
		if err != nil {
			return
		}
		again, err := ParseTxSnapshot(snap.String())
		require.NoError(t, err)
		require.Equal(t, snap, again)
		if snap.Visible(xid) {
			require.NotEqual(t, uint32(snap.Xmax), xid, "an id at xmax is never visible")
		}
	})
}
