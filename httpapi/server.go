// Package httpapi serves the daemon's operational endpoints: Prometheus
// metrics, liveness and readiness checks, the monitor's snapshot as JSON and
// a status page for the people on call.
package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/replicator-cdc/replicator/monitor"
)

// DefaultReadyMaxLag is the lag from which /readyz reports not ready when
// Options.ReadyMaxLag is zero.
const DefaultReadyMaxLag = 5 * time.Minute

// Limits that keep every request's cost bounded, whoever the client is.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	// Above metricsTimeout, so that a slow gather is answered with promhttp's
	// 503 rather than a connection cut mid-write.
	writeTimeout   = 15 * time.Second
	idleTimeout    = 60 * time.Second
	maxHeaderBytes = 16 << 10
	metricsTimeout = 10 * time.Second
	// Scrapers send one request at a time; more at once is a misconfiguration
	// or abuse, and each gather walks every series.
	metricsInFlight = 4
	// Long enough for in-flight requests, all of them short, to finish.
	shutdownTimeout = 5 * time.Second
)

//go:embed status.html status.css status.js
var assets embed.FS

// Options configures a Server.
type Options struct {
	// Monitor supplies every figure but the metrics. Required.
	Monitor *monitor.Monitor
	// Gatherer is what /metrics exposes: the registry the monitor's series
	// are registered on. Required.
	Gatherer prometheus.Gatherer
	// ReadyMaxLag is the lag from which /readyz answers 503; zero means
	// DefaultReadyMaxLag.
	ReadyMaxLag time.Duration
	// Logger receives the errors met while serving; nil discards them.
	Logger *slog.Logger
}

// snapshotter is the part of the monitor the server reads. Taking it rather
// than *monitor.Monitor lets the page be rendered from fixed figures, since
// the monitor's throughput series fills only in real time.
type snapshotter interface {
	Snapshot() monitor.Snapshot
}

// Server answers the operational endpoints. It is an http.Handler; Serve
// runs it with timeouts and a graceful shutdown.
type Server struct {
	source      snapshotter
	readyMaxLag time.Duration
	logger      *slog.Logger
	handler     http.Handler
	page        *template.Template
	css         template.CSS
	js          template.JS
	// pageCSP allows exactly the page's own inline style and script, so that
	// markup smuggled in through a table name or an error message could not
	// run even if escaping failed.
	pageCSP string
}

// New builds a Server. It panics when a required option is missing, which
// is a wiring mistake caught at start-up.
func New(opts Options) *Server {
	if opts.Monitor == nil || opts.Gatherer == nil {
		panic("httpapi: Options.Monitor and Options.Gatherer are required")
	}
	return newServer(opts.Monitor, opts)
}

func newServer(source snapshotter, opts Options) *Server {
	s := &Server{source: source, readyMaxLag: opts.ReadyMaxLag, logger: opts.Logger}
	if s.readyMaxLag <= 0 {
		s.readyMaxLag = DefaultReadyMaxLag
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.page = template.Must(template.New("status.html").Funcs(pageFuncs()).ParseFS(assets, "status.html"))
	css, err := assets.ReadFile("status.css")
	if err != nil {
		panic(err) // embedded above, so only a build mistake gets here
	}
	js, err := assets.ReadFile("status.js")
	if err != nil {
		panic(err)
	}
	// The style and script are inserted verbatim (template.CSS and .JS), so
	// their hashes are those of the files.
	s.css, s.js = template.CSS(css), template.JS(js)
	s.pageCSP = "default-src 'none'; style-src '" + sha256Source(css) + "'; script-src '" + sha256Source(js) +
		"'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: metricsInFlight,
		Timeout:             metricsTimeout,
	}))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /status.json", s.statusJSON)
	mux.HandleFunc("GET /{$}", s.statusPage)
	s.handler = mux
	return s
}

func sha256Source(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	// Every answer is a live figure; a cached one would mislead.
	h.Set("Cache-Control", "no-store")
	s.handler.ServeHTTP(w, r)
}

// Serve answers requests on ln until ctx ends, then shuts down gracefully:
// it stops accepting, lets in-flight requests finish for a few seconds and
// closes what remains. It returns nil after a shutdown, or the error that
// stopped serving earlier. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.logger.Info("http api listening", "addr", ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("httpapi: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("httpapi: shutdown: %w", err), srv.Close())
	}
	// Serve returns ErrServerClosed as soon as Shutdown starts.
	<-served
	return err
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz reports ready only while streaming with a lag below the limit, so
// that an orchestrator can hold back traffic or alert during the snapshot,
// when the daemon falls behind, and when the stream stalls (the lag figure
// of a stream that hears nothing is stale).
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	snap := s.source.Snapshot()
	switch {
	case snap.Stalled != "":
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", snap.Stalled)
	case snap.Phase != "streaming":
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: phase is %s, not streaming\n", snap.Phase)
	case !(snap.LagSeconds < s.readyMaxLag.Seconds()): // a NaN lag is not ready either
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: lag %s is not below %s\n", dur(snap.LagSeconds), s.readyMaxLag)
	case failing(snap) != "":
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "degraded: %s\n", failing(snap))
	default:
		fmt.Fprintf(w, "ready: streaming, lag %s\n", dur(snap.LagSeconds))
	}
}

// failing names the first target table that fails as a whole, and why.
func failing(snap monitor.Snapshot) string {
	for _, t := range snap.Tables {
		if t.Failing != "" {
			return fmt.Sprintf("target %s table %s is failing, its writes wait: %s", t.Target, t.Table, t.Failing)
		}
	}
	return ""
}

func (s *Server) statusJSON(w http.ResponseWriter, _ *http.Request) {
	snap := s.source.Snapshot()
	// An empty list rather than null, so that clients can iterate it as is.
	if snap.Tables == nil {
		snap.Tables = []monitor.Table{}
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(snap); err != nil {
		s.fail(w, "encode status", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf.Bytes())
}

// pageData is what status.html renders.
type pageData struct {
	monitor.Snapshot
	ReadyMaxLag float64 // seconds, for the script's lag warning
	LagWarn     bool
	CSS         template.CSS
	JS          template.JS
}

func (s *Server) statusPage(w http.ResponseWriter, _ *http.Request) {
	snap := s.source.Snapshot()
	data := pageData{
		Snapshot:    snap,
		ReadyMaxLag: s.readyMaxLag.Seconds(),
		LagWarn:     !(snap.LagSeconds < s.readyMaxLag.Seconds()),
		CSS:         s.css,
		JS:          s.js,
	}
	// Rendered in full before writing, so that a template error answers 500
	// instead of half a page.
	var buf bytes.Buffer
	if err := s.page.Execute(&buf, data); err != nil {
		s.fail(w, "render status page", err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", s.pageCSP)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) fail(w http.ResponseWriter, what string, err error) {
	s.logger.Error("http api: "+what, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}
