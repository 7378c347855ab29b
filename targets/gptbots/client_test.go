package gptbots

import (
	"net/http"
	"testing"
	"time"

	"github.com/replicator-cdc/replicator/targets/apicall"
)

func TestDecodeReplyReadsRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"":                              0,
		"2":                             2 * time.Second,
		" 1 ":                           time.Second,
		"soon":                          0,
		"Wed, 21 Oct 2015 07:28:00 GMT": 0,
	} {
		a := &apicall.Answer{Status: 429, Header: http.Header{"Retry-After": {in}}, Body: []byte(`{"code":429}`)}
		if got := decodeReply(a).retryAfter; got != want {
			t.Errorf("Retry-After %q = %v, want %v", in, got, want)
		}
	}
}
