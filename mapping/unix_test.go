package mapping

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUnixOfInfinityIsAnError: an infinite value has no Unix time; the
// encoder says so (the mapping turns it into a rejection of that value).
func TestUnixOfInfinityIsAnError(t *testing.T) {
	for _, c := range []class{classTimestampTZ, classTimestamp, classDate} {
		for _, in := range []string{"infinity", "-infinity"} {
			e := encoder{t: &valueType{class: c}, format: FormatUnixMS}
			_, err := e.encode(nil, []byte(in))
			require.ErrorIs(t, err, errInfinityUnix)
			require.ErrorContains(t, err, "infinity has no Unix time")
		}
	}
	for _, in := range []string{"", "2024", "2024-01-02 03:04", "2024-13-01 00:00:00+00", "2024-01-02 03:04:05+00 AD", "2024-01-02 03:04:05.+00"} {
		e := encoder{t: &valueType{class: classTimestampTZ}, format: FormatUnixS}
		_, err := e.encode(nil, []byte(in))
		require.Error(t, err, in)
		require.False(t, errors.Is(err, errInfinityUnix))
	}
}

func TestMoney(t *testing.T) {
	ok := map[string]string{
		"$0.00": "0.00", "$1,234.56": "1234.56", "-$1,234.56": "-1234.56", "($1.00)": "-1.00",
		"$92,233,720,368,547,758.07": "92233720368547758.07", "-$92,233,720,368,547,758.08": "-92233720368547758.08", "$5": "5",
	}
	for in, want := range ok {
		out, err := appendMoney(nil, []byte(in))
		require.NoError(t, err, in)
		require.Equal(t, want, string(out), in)
	}
	for _, in := range []string{"", "$", "1.234,56 €", "$1,23.00", "$1,2345.00", "€1.00", "-($1.00)", "$1.", "$.5", "$01.00", "($1.00", "$1,000,00"} {
		_, err := appendMoney(nil, []byte(in))
		require.Error(t, err, in)
	}
}
