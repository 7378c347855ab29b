package setting

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChecks(t *testing.T) {
	tests := []struct {
		name  string
		check func(*Problems)
		want  []string
	}{
		{"url ok", func(ps *Problems) { ps.URL("base_url", "https://x.example") }, nil},
		{"url without scheme", func(ps *Problems) { ps.URL("base_url", "x.example") }, []string{`base_url: "x.example" is not an http or https URL`}},
		{"rate zero", func(ps *Problems) { ps.Rate("rps", 0) }, []string{"rps: is 0: use a number above zero"}},
		{"duration negative", func(ps *Problems) { ps.Duration("t", -time.Second) }, []string{"t: is -1s: use a duration above zero, such as 10s"}},
		{"range low bound", func(ps *Problems) { ps.Range("n", 1, 1, 64, 16) }, nil},
		{"range high bound", func(ps *Problems) { ps.Range("n", 64, 1, 64, 16) }, nil},
		{"range below", func(ps *Problems) { ps.Range("n", 0, 1, 64, 16) }, []string{"n: is 0: use 1 to 64, such as 16"}},
		{"range above", func(ps *Problems) { ps.Range("n", 65, 1, 64, 16) }, []string{"n: is 65: use 1 to 64, such as 16"}},
		{"whole target", func(ps *Problems) { ps.AddFrom("", []string{"a"}, "needs %s", "a") }, []string{"needs a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps Problems
			tt.check(&ps)
			var got []string
			for _, p := range ps {
				got = append(got, p.Error())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestErr(t *testing.T) {
	var ps Problems
	require.NoError(t, ps.Err("x"))
	ps.Add("a", "is bad")
	ps.Add("b", "is worse")
	assert.EqualError(t, ps.Err(`feishu target "x"`), "feishu target \"x\": a: is bad\nb: is worse")
}
