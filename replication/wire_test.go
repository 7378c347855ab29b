package replication

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func frame(typ byte, body string) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint32(b, uint32(4+len(body)))
	return append(b, body...)
}

var errInterrupted = errors.New("i/o timeout")

// choppy returns one byte per read and an error between every two reads,
// as a read deadline can cut a frame anywhere.
type choppy struct {
	data []byte
	fail bool
}

func (c *choppy) Read(p []byte) (int, error) {
	c.fail = !c.fail
	if c.fail {
		return 0, errInterrupted
	}
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	p[0] = c.data[0]
	c.data = c.data[1:]
	return 1, nil
}

func TestFrameReaderResumesAfterInterruptions(t *testing.T) {
	stream := append(append(frame('d', "hello"), frame('k', "")...), frame('E', "oops")...)
	f := frameReader{r: &choppy{data: stream}}
	var got []string
	for i := 0; i < 1000 && len(got) < 3; i++ {
		typ, body, err := f.next()
		if errors.Is(err, errInterrupted) {
			continue
		}
		require.NoError(t, err)
		got = append(got, string(typ)+":"+string(body))
	}
	require.Equal(t, []string{"d:hello", "k:", "E:oops"}, got)
}

func TestFrameReaderBodiesAreOwned(t *testing.T) {
	f := frameReader{r: bytes.NewReader(append(frame('d', "first"), frame('d', "second")...))}
	_, a, err := f.next()
	require.NoError(t, err)
	_, b, err := f.next()
	require.NoError(t, err)
	require.Equal(t, "first", string(a), "a later frame must not overwrite an earlier body")
	require.Equal(t, "second", string(b))
}

func TestFrameReaderRejectsBadLengths(t *testing.T) {
	for _, n := range []uint32{0, 3, 0xFFFFFFFF} {
		b := binary.BigEndian.AppendUint32([]byte{'d'}, n)
		f := frameReader{r: bytes.NewReader(b)}
		_, _, err := f.next()
		require.ErrorIs(t, err, errFrameTooLarge, "length %d", n)
	}
}

func FuzzFrameReader(f *testing.F) {
	f.Add(append(frame('d', "x"), frame('k', "yy")...))
	f.Add([]byte{'d', 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := frameReader{r: bytes.NewReader(data)}
		total := 0
		for i := 0; i < 1000; i++ {
			_, body, err := fr.next()
			if err != nil {
				return
			}
			total += 5 + len(body)
			if total > len(data) {
				t.Fatalf("read %d bytes of frames from %d bytes of input", total, len(data))
			}
		}
	})
}

func TestFrameReaderLargeFrame(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 3*wireBuffer+17)
	f := frameReader{r: bytes.NewReader(frame('d', string(big)))}
	_, body, err := f.next()
	require.NoError(t, err)
	require.Equal(t, big, body)
}

func TestFrameReaderDoesNotTrustLengths(t *testing.T) {
	b := binary.BigEndian.AppendUint32([]byte{'d'}, maxFrame)
	f := frameReader{r: bytes.NewReader(append(b, "short"...))}
	_, _, err := f.next()
	require.ErrorIs(t, err, io.EOF)
	require.Less(t, cap(f.body), 2*wireBuffer, "a frame's claimed length must not be allocated before its bytes arrive")
}
