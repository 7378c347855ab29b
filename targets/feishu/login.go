package feishu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/replicator-cdc/replicator/metrics"
)

// DefaultLoginListen is where Login listens for the browser's redirect when
// no address is given. The redirect URL, http://127.0.0.1:9768/callback,
// must be registered in the app's security settings.
const DefaultLoginListen = "127.0.0.1:9768"

type callback struct {
	code string
	err  error
}

// Login runs the OAuth authorization code flow for an OAuth target: it
// prints the authorization URL to out, waits on a loopback listener for the
// browser's redirect with the code, exchanges the code and saves the tokens
// to the target's token file, where Writer picks them up. It returns when
// the tokens are saved, or when ctx ends.
func Login(ctx context.Context, cfg Config, listen string, out io.Writer) error {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.OAuth.AppID == "" {
		return fmt.Errorf("feishu target %q: login needs oauth {app_id, app_secret} in the target's configuration", cfg.Name)
	}
	if listen == "" {
		listen = DefaultLoginListen
	}
	if host, _, err := net.SplitHostPort(listen); err != nil || !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("login listens for the redirect on a loopback address such as %s, not %q", DefaultLoginListen, listen)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("feishu target %q: state directory: %w", cfg.Name, err)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", listen)
	if err != nil {
		return fmt.Errorf("feishu login: listen for the redirect: %w", err)
	}
	redirect := "http://" + ln.Addr().String() + "/callback"
	stateToken := randomHex()
	got := make(chan callback, 1)
	srv := &http.Server{Handler: callbackHandler(stateToken, got), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	defer func() {
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
		<-served
	}()

	q := url.Values{
		"client_id":     {cfg.OAuth.AppID},
		"redirect_uri":  {redirect},
		"scope":         {strings.Join(cfg.Scopes, " ")},
		"state":         {stateToken},
		"response_type": {"code"},
	}
	authURL := strings.TrimSuffix(cfg.AuthorizeURL, "/") + "/open-apis/authen/v1/authorize?" + q.Encode()
	fmt.Fprintf(out, "Open this address in a browser, signed in as the Feishu user the replicator writes as, and approve:\n\n  %s\n\nWaiting for the redirect to %s ...\n", authURL, redirect)

	var cb callback
	select {
	case cb = <-got:
	case <-ctx.Done():
		return ctx.Err()
	}
	if cb.err != nil {
		return fmt.Errorf("feishu target %q: authorization failed: %w", cfg.Name, cb.err)
	}
	tc := newTokenClient(&cfg, http.DefaultClient, slog.New(slog.DiscardHandler), metrics.NewTarget(prometheus.NewRegistry()))
	tokens, err := tc.exchange(ctx, map[string]string{"grant_type": "authorization_code", "code": cb.code, "redirect_uri": redirect})
	if err != nil {
		return err
	}
	path := tokenDocs(&cfg).Where(TokenName(cfg.Name))
	if err := saveTokenDoc(&cfg, tokens); err != nil {
		return fmt.Errorf("feishu target %q: save tokens: %w", cfg.Name, err)
	}
	fmt.Fprintf(out, "Authorized. Tokens saved to %s", path)
	if !tokens.RefreshTokenExpiresAt.IsZero() {
		fmt.Fprintf(out, "; authorize again before %s", tokens.RefreshTokenExpiresAt.Format(time.RFC3339))
	}
	fmt.Fprintln(out, ".")
	return nil
}

// callbackHandler takes the first redirect carrying the expected state;
// others are answered with an error and ignored.
func callbackHandler(state string, got chan<- callback) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("state") != state {
			http.Error(w, "This authorization answer does not belong to the running login.", http.StatusBadRequest)
			return
		}
		var cb callback
		switch {
		case q.Get("code") != "":
			cb.code = q.Get("code")
		case q.Get("error") != "":
			cb.err = fmt.Errorf("the authorization page answered %q", q.Get("error"))
		default:
			cb.err = errors.New("the redirect carried no code")
		}
		select {
		case got <- cb:
			fmt.Fprintln(w, "Done: you can close this window and return to the terminal.")
		default:
			http.Error(w, "The login has already received an answer.", http.StatusConflict)
		}
	})
	return mux
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
