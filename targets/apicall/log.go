package apicall

import "time"

// failed logs a failed attempt when its failure differs from the one
// logged last for the credential: an outage retried for an hour, or many
// requests in flight failing alike, is one line, not one per attempt.
func (c *Client) failed(r Request, attempt int, v Verdict, wait time.Duration) {
	key := v.Reason + ": " + v.Failure.Error()
	c.mu.Lock()
	same := key == c.logged
	c.logged = key
	c.mu.Unlock()
	if same {
		return
	}
	c.cfg.Log.Warn("request failed; retrying", "table", r.Table, "operation", r.Op, "rows", r.Rows,
		"attempt", attempt, "reason", v.Reason, "error", v.Failure.Error(), "wait", wait)
}

// succeeded ends a run of failures, saying so once.
func (c *Client) succeeded() {
	c.mu.Lock()
	was := c.logged
	c.logged = ""
	c.mu.Unlock()
	if was != "" {
		c.cfg.Log.Info("requests succeed again", "last_error", was)
	}
}

// outageChanged says once when the API goes down (and how requests are
// held back meanwhile), and once when it is back: the failure lines alone
// do not tell that the other requests stopped sending.
func (c *Client) outageChanged(down bool, since time.Time, last error) {
	if down {
		c.cfg.Log.Warn("the API fails every request; one request at a time probes it, the others wait",
			"failures", downAfter, "error", last.Error(), "probe_max", c.outage.probeMax)
		return
	}
	c.cfg.Log.Info("the API answers again; the waiting requests resume", "down_for", time.Since(since).Round(time.Millisecond))
}
