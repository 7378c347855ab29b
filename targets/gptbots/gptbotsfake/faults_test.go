package gptbotsfake

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		fault   Fault
		status  int // 0: the call fails without an answer
		applied bool
	}{
		{FaultNone, http.StatusOK, true},
		{FaultServerError, http.StatusInternalServerError, false},
		{FaultBadGateway, http.StatusBadGateway, false},
		{FaultThrottle, http.StatusTooManyRequests, false},
		{FaultDrop, 0, false},
		{FaultLostAnswer, 0, true},
		{FaultSlow, 0, false},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			s := newServer(t, Options{SlowDelay: 5 * time.Second})
			s.InjectFaults(tc.fault)
			data, _ := json.Marshal(upsert(byID("1", map[string]any{"name": "a"})))
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+UpdatePath, bytes.NewReader(data))
			req.Header.Set("Authorization", "Bearer "+s.Options().APIKey)
			status := 0
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			if status != tc.status {
				t.Errorf("status %d (err %v), want %d", status, err, tc.status)
			}
			// A slow answer is logged once the server notices the client left.
			deadline := time.Now().Add(3 * time.Second)
			for len(s.Requests()) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := len(s.Rows(testTable)) == 1; got != tc.applied {
				t.Errorf("applied = %v, want %v", got, tc.applied)
			}
			if log := s.Requests(); len(log) != 1 || log[0].Fault != tc.fault || log[0].Status != tc.status {
				t.Errorf("log: %+v", log)
			}
		})
	}
}

func TestFaultRate(t *testing.T) {
	s := newServer(t, Options{Seed: 1})
	s.SetFaultRate(1, FaultServerError)
	key := s.Options().APIKey
	for range 3 {
		if r := call(t, s, PagePath, key, map[string]any{"table_id": testTable, "page": 1, "page_size": 1}); r.code() != "50000" {
			t.Fatalf("got %v", r.body)
		}
	}
	s.SetFaultRate(0)
	if r := call(t, s, PagePath, key, map[string]any{"table_id": testTable, "page": 1, "page_size": 1}); r.status != http.StatusOK {
		t.Fatalf("got %d %v", r.status, r.body)
	}
}
