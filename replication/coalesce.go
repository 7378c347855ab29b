package replication

import (
	"net"
	"time"
)

// The walsender sends each change as soon as it is decoded, so a reader
// that keeps up wakes, reads and parks once per small message: on a small
// machine those wakeups cost more than decoding the changes, and their CPU
// is taken from the walsender. While the server streams fast, the socket's
// receive low-water mark (SO_RCVLOWAT) makes the kernel wake the reader
// only once coalesceBytes have arrived; when the stream slows, or a read
// waits a whole poll interval, it falls back to one byte. A burst's last
// bytes thus wait at most one poll interval (the read deadline), well
// within the pipeline's flush interval.
const (
	coalesceBytes = 16 << 10
	// coalesceWindow is the time over which the rate is judged: the stream
	// counts as fast when it brings coalesceBytes within it, so that
	// gathering them delays a message by no more than about this much.
	coalesceWindow = 5 * time.Millisecond
)

// coalescer decides the low-water mark from the bytes the stream brings.
// One goroutine (the stream's) uses it.
type coalescer struct {
	// setLowat sets the socket's low-water mark; nil when the connection
	// cannot have one (then the coalescer does nothing).
	setLowat    func(bytes int) error
	raised      bool
	windowStart time.Time
	windowBytes int
}

func newCoalescer(conn net.Conn) *coalescer {
	return &coalescer{setLowat: lowatSetter(conn)}
}

// received notes n bytes of the stream read at now.
func (c *coalescer) received(now time.Time, n int) {
	if c.setLowat == nil {
		return
	}
	c.windowBytes += n
	elapsed := now.Sub(c.windowStart)
	if elapsed < coalesceWindow {
		return
	}
	fast := int64(c.windowBytes)*int64(coalesceWindow) >= int64(coalesceBytes)*int64(elapsed)
	c.windowStart, c.windowBytes = now, 0
	c.raise(fast)
}

// waited says a read found nothing within its deadline: the stream is
// quiet, so whatever comes next is read at once.
func (c *coalescer) waited(now time.Time) {
	if c.setLowat == nil {
		return
	}
	c.windowStart, c.windowBytes = now, 0
	c.raise(false)
}

func (c *coalescer) raise(on bool) {
	if on == c.raised {
		return
	}
	bytes := 1
	if on {
		bytes = coalesceBytes
	}
	if err := c.setLowat(bytes); err != nil {
		// The socket refuses: read as before, message by message.
		c.setLowat = nil
		return
	}
	c.raised = on
}

// lowatSetter returns what sets conn's receive low-water mark, nil unless
// conn is TCP (possibly under TLS), where the kernel honours the mark for
// wakeups.
func lowatSetter(conn net.Conn) func(int) error {
	for {
		tls, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		conn = tls.NetConn()
	}
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return nil
	}
	return rcvLowat(raw)
}
