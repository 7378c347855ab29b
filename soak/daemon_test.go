//go:build soak

package soak

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/replicator-cdc/replicator/internal/childproc"
)

// daemon runs the replicator binary as a process, as a user does, and
// keeps the figures the soak reports across its restarts.
type daemon struct {
	bin, config, logPath, metricsURL string
	env                              []string

	mu         sync.Mutex
	cmd        *exec.Cmd
	exited     chan struct{}
	exitErr    error
	starts     int
	peakRSSKiB int64
	// reconnects sums replicator_source_reconnects_total over the processes
	// that ended, plus the latest reading of the running one.
	reconnectsDone, reconnectsNow int64
}

func (d *daemon) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	logFile, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(d.bin, "run", "--config", d.config)
	cmd.Env = append(os.Environ(), d.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The daemon must not outlive the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Started from a thread of its own: see childproc.
	proc, err := childproc.Start(cmd)
	if err != nil {
		logFile.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		<-proc.Done()
		logFile.Close()
		d.mu.Lock()
		d.exitErr = proc.Err()
		d.mu.Unlock()
		close(exited)
	}()
	d.cmd, d.exited, d.exitErr = cmd, exited, nil
	d.starts++
	return nil
}

// running says whether the process is alive; if not, why it ended.
func (d *daemon) running() (bool, error) {
	d.mu.Lock()
	exited := d.exited
	d.mu.Unlock()
	select {
	case <-exited:
		d.mu.Lock()
		defer d.mu.Unlock()
		return false, d.exitErr
	default:
		return true, nil
	}
}

// kill ends the process with SIGKILL, after reading its figures.
func (d *daemon) kill() {
	d.sample()
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	d.mu.Lock()
	d.reconnectsDone += d.reconnectsNow
	d.reconnectsNow = 0
	d.mu.Unlock()
}

// stop ends the process as an operator does, with SIGTERM.
func (d *daemon) stop(timeout time.Duration) error {
	d.sample()
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(timeout):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		return fmt.Errorf("the daemon did not stop within %s of SIGTERM", timeout)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reconnectsDone += d.reconnectsNow
	d.reconnectsNow = 0
	return d.exitErr
}

// sample reads the running process's peak RSS and reconnect count.
func (d *daemon) sample() {
	d.mu.Lock()
	cmd := d.cmd
	d.mu.Unlock()
	if ok, _ := d.running(); !ok {
		return
	}
	if kib, err := vmHWM(cmd.Process.Pid); err == nil {
		d.mu.Lock()
		d.peakRSSKiB = max(d.peakRSSKiB, kib)
		d.mu.Unlock()
	}
	if n, err := scrapeCounter(d.metricsURL, "replicator_source_reconnects_total"); err == nil {
		d.mu.Lock()
		d.reconnectsNow = max(d.reconnectsNow, n)
		d.mu.Unlock()
	}
}

func (d *daemon) figures() (starts int, reconnects, peakKiB int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.starts, d.reconnectsDone + d.reconnectsNow, d.peakRSSKiB
}

// logTail is the end of the daemon's log, for a failure's message.
func (d *daemon) logTail() string {
	b, _ := os.ReadFile(d.logPath)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// vmHWM is a process's peak resident set size in KiB.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// scrapeCounter reads one unlabelled counter from a Prometheus endpoint.
func scrapeCounter(url, name string) (int64, error) {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(body) {
		if rest, ok := bytes.CutPrefix(line, []byte(name+" ")); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(string(rest)), 64)
			return int64(v), err
		}
	}
	return 0, fmt.Errorf("%s: no %s", url, name)
}
