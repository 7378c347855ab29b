package tcpproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

func (c *client) send(line string) {
	_, err := c.c.Write([]byte(line + "\n"))
	require.NoError(c.t, err)
}

// read returns the next line, or "" when none comes within wait.
func (c *client) read(wait time.Duration) string {
	require.NoError(c.t, c.c.SetReadDeadline(time.Now().Add(wait)))
	line, err := c.r.ReadString('\n')
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ""
	}
	require.NoError(c.t, err)
	return line[:len(line)-1]
}

// A frozen proxy delivers nothing, on old and new connections alike, and
// closes nothing; thawed, it delivers what it held back.
func TestFreezeHoldsBytesUntilThaw(t *testing.T) {
	p, err := Start(echoServer(t))
	require.NoError(t, err)
	defer p.Close()
	old := dial(t, p.Addr())
	old.send("one")
	require.Equal(t, "one", old.read(10*time.Second))

	p.Freeze()
	old.send("two")
	fresh := dial(t, p.Addr())
	fresh.send("three")
	require.Equal(t, "", old.read(300*time.Millisecond), "a frozen proxy forwarded a byte")
	require.Equal(t, "", fresh.read(300*time.Millisecond), "a frozen proxy forwarded a byte on a new connection")

	p.Thaw()
	require.Equal(t, "two", old.read(10*time.Second))
	require.Equal(t, "three", fresh.read(10*time.Second))
	old.send("four")
	require.Equal(t, "four", old.read(10*time.Second))
}

// A connection closed while frozen reaches the server only after the thaw.
func TestFreezeHoldsCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	p, err := Start(ln.Addr().String())
	require.NoError(t, err)
	defer p.Close()
	c := dial(t, p.Addr())
	server, err := ln.Accept()
	require.NoError(t, err)
	defer server.Close()

	p.Freeze()
	require.NoError(t, c.c.Close())
	buf := make([]byte, 1)
	require.NoError(t, server.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err = server.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the close passed a frozen proxy")

	p.Thaw()
	require.NoError(t, server.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = server.Read(buf)
	require.ErrorIs(t, err, io.EOF)
}

func TestCloseEndsFrozenConnections(t *testing.T) {
	p, err := Start(echoServer(t))
	require.NoError(t, err)
	c := dial(t, p.Addr())
	p.Freeze()
	c.send("held")
	require.NoError(t, p.Close())
	require.NoError(t, c.c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = c.r.ReadString('\n')
	require.Error(t, err)
	require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "the connection outlived the proxy")
}
