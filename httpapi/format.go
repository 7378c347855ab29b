package httpapi

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/replicator-cdc/replicator/monitor"
)

// The functions below render the status page's figures on the server. The
// page's script re-renders them from /status.json with twins of the same
// names in status.js; both must give the same text, which the browser test
// checks, so a change here needs the same change there.

// Sparkline geometry, in SVG user units; the viewBox in status.html and the
// constants in status.js use the same.
const (
	sparkWidth  = 120
	sparkHeight = 28
	sparkPad    = 2
)

func pageFuncs() template.FuncMap {
	return template.FuncMap{
		"count":    count,
		"bytes":    bytesText,
		"dur":      dur,
		"clock":    clock,
		"ago":      ago,
		"uptime":   func(s monitor.Snapshot) string { return dur(s.Now.Sub(s.Started).Seconds()) },
		"rows":     func(t monitor.Table) string { return count(t.Upserts + t.Deletes) },
		"lastRate": lastRate,
		"spark":    spark,
		"snapshot": snapshotProgress,
	}
}

// round1 rounds half away from zero to one decimal, as status.js's round1
// does, so that both sides print ties alike (fmt alone rounds half to even).
func round1(v float64) float64 { return math.Round(v*10) / 10 }

// count groups thousands with commas, like toLocaleString("en-US").
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String()
}

// bytesText prints a byte count in binary units with one decimal.
func bytesText(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v /= 1024; v >= 1024 && i < len(units)-1; v /= 1024 {
		i++
	}
	return fmt.Sprintf("%.1f %s", round1(v), units[i])
}

// dur prints seconds at the precision an operator needs: tenths while it is
// short, then the two largest units.
func dur(sec float64) string {
	switch {
	case sec <= 0 || math.IsNaN(sec):
		return "0s"
	case sec < 10:
		return fmt.Sprintf("%.1fs", round1(sec))
	}
	s := int64(sec)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm %02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh %02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd %02dh", s/86400, s%86400/3600)
}

// rate prints rows per second.
func rate(v float64) string {
	switch {
	case v <= 0:
		return "0 rows/s"
	case v < 10:
		return fmt.Sprintf("%.1f rows/s", round1(v))
	}
	return count(int64(math.Round(v))) + " rows/s"
}

// lastRate is the newest complete slot of the throughput series.
func lastRate(series []float64) string {
	if len(series) == 0 {
		return rate(0)
	}
	return rate(series[len(series)-1])
}

// clock prints a time of day in UTC, so that every reader of the page (and
// the server's logs) agree on it whatever their time zone.
func clock(t time.Time) string { return t.UTC().Format("15:04:05") + " UTC" }

// ago measures from the snapshot's time rather than the reader's clock,
// which may be off.
func ago(now, t time.Time) string { return dur(now.Sub(t).Seconds()) + " ago" }

// sparkPoints are the SVG polyline and polygon point lists of a series: the
// line, and the area under it closed along the bottom edge.
type sparkPoints struct{ Line, Area string }

func spark(series []float64) sparkPoints {
	peak := 0.0
	for _, v := range series {
		peak = max(peak, v)
	}
	step := 0.0
	if len(series) > 1 {
		step = float64(sparkWidth) / float64(len(series)-1)
	}
	var line strings.Builder
	for i, v := range series {
		y := float64(sparkHeight - sparkPad)
		if peak > 0 {
			y -= v / peak * (sparkHeight - 2*sparkPad)
		}
		if i > 0 {
			line.WriteByte(' ')
		}
		fmt.Fprintf(&line, "%.1f,%.1f", round1(float64(i)*step), round1(y))
	}
	if line.Len() == 0 {
		return sparkPoints{}
	}
	area := fmt.Sprintf("0,%d %s %d,%d", sparkHeight, line.String(), sparkWidth, sparkHeight)
	return sparkPoints{Line: line.String(), Area: area}
}

// snapshotView is what the snapshot column shows: a bar when the estimate
// is known, otherwise only text.
type snapshotView struct {
	Done    bool
	HasBar  bool
	Percent int64   // shown; held below 100 until done, since the estimate may be low
	Value   float64 // bar fill, 0 to 1
	Text    string
}

func snapshotProgress(t monitor.Table) snapshotView {
	switch {
	case t.SnapshotDone:
		return snapshotView{Done: true, Text: count(t.SnapshotRows) + " rows"}
	case t.SnapshotTotal > 0:
		rows := min(t.SnapshotRows, t.SnapshotTotal)
		pct := min(rows*100/t.SnapshotTotal, 99)
		text := count(t.SnapshotRows) + " / ~" + count(t.SnapshotTotal)
		if t.Resyncing {
			text = "online resync: " + text + fmt.Sprintf(", chunk %d", t.ResyncChunk)
		}
		return snapshotView{HasBar: true, Percent: pct, Value: float64(rows) / float64(t.SnapshotTotal), Text: text}
	case t.SnapshotRows > 0:
		return snapshotView{Text: count(t.SnapshotRows) + " rows copied"}
	}
	return snapshotView{Text: "—"}
}
