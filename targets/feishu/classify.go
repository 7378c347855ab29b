package feishu

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/apicall"
	"github.com/replicator-cdc/replicator/targets/isolate"
)

// Feishu codes the writer acts on.
const (
	// noCode stands for an answer whose body is not a Feishu envelope.
	noCode = -1

	codeInvalidParam  = 2320001
	codeThrottled     = 99991400
	codeMissingToken  = 99991661
	codeTokenInvalid  = 99991663
	codeUserInvalid   = 99991668
	codeTokenExpired  = 99991677
	codeScopeMissing  = 99991672
	codeGrantMissing  = 99991676
	codeNoPermission  = 99991679
	codeWrongAppCreds = 99991543
)

// classify decides from the HTTP status and the envelope's code. The body
// code wins over the status where both speak, because Feishu signals
// failures in the code whatever the status.
func classify(a answer) apicall.Verdict {
	failure := &apiError{status: a.status, code: a.code, msg: a.msg}
	v := func(act apicall.Action, reason string) apicall.Verdict {
		return apicall.Verdict{Action: act, Reason: reason, Failure: failure}
	}
	switch code, status := a.code, a.status; {
	case code == codeThrottled || status == http.StatusTooManyRequests:
		t := v(apicall.Throttle, apicall.ReasonThrottled)
		t.Reset = apicall.Seconds(a.header.Get("x-ogw-ratelimit-reset"))
		return t
	case code == 0 && status >= 200 && status < 300:
		return apicall.Verdict{Action: apicall.Done}
	case code == codeTokenInvalid || code == codeUserInvalid || code == codeTokenExpired:
		return v(apicall.Refresh, apicall.ReasonTokenExpired)
	case code == codeScopeMissing || code == codeGrantMissing || code == codeNoPermission:
		return v(apicall.Fatal, apicall.ReasonForbidden)
	case code == codeWrongAppCreds, code == codeMissingToken:
		return v(apicall.Fatal, apicall.ReasonUnauthorized)
	case code == codeInvalidParam && missingConstraint(a.msg):
		// No unique constraint matches on_conflict: the table's schema,
		// not a row, and no retry changes it.
		return v(apicall.Fatal, apicall.ReasonTable)
	case code == codeInvalidParam:
		return v(apicall.Reject, apicall.ReasonRejected)
	case status >= 500:
		return v(apicall.Retry, apicall.ReasonServer)
	case code == noCode && status >= 200 && status < 300:
		// A garbled success answer: the write may or may not have landed,
		// and writing it again is harmless.
		return v(apicall.Retry, apicall.ReasonBadAnswer)
	}
	return v(apicall.Fatal, apicall.ReasonUnexpected)
}

// PostgreSQL's messages that quote the one input value a column type
// refused. Behind the API is PostgREST over PostgreSQL, whose error
// carries PostgreSQL's message; that Feishu passes it on in msg is
// unverified, so a message that matches none of these falls back to
// isolation by splitting. PostgreSQL quotes the value without escaping, so
// the value runs to the last quote.
var valuePatterns = []*regexp.Regexp{
	regexp.MustCompile(`invalid input syntax for type [^:"]+: "(.*)"`),
	regexp.MustCompile(`invalid input value for enum [^:"]+: "(.*)"`),
	regexp.MustCompile(`value "(.*)" is out of range for type [a-z ]+`),
	regexp.MustCompile(`date/time field value out of range: "(.*)"`),
	regexp.MustCompile(`time zone "(.*)" not recognized`),
	regexp.MustCompile(`"(.*)" is out of range for type (?:real|double precision)`),
}

// quotedParts are what PostgreSQL quotes: names and values.
var quotedParts = regexp.MustCompile(`"[^"]*"|\([^)]*\)`)

// notNullPattern is PostgreSQL's NOT NULL violation, naming the column.
var notNullPattern = regexp.MustCompile(`null value in column "([^"]+)"`)

// tableWords mark a message about the table, the workspace, access or the
// schema rather than any row: a missing table or column, a missing
// conflict target, no permission.
// They are matched with quoted and parenthesized parts taken out, so that a
// row's value quoted in a message cannot make it look like one.
var tableWords = regexp.MustCompile(`(?i)(table|relation|workspace|column|schema)\b.*\b(not (be )?found|not exist|does not exist|could not find)|could not find the .* column|no unique or exclusion constraint|permission|no access|forbidden|denied`)

// verdict reads a refusal (2320001) of recs: rows the message pins down by
// a value are bad; a message about the table is the table's failure;
// anything else is a refusal for isolation by splitting to explain.
//
// A value pinned to one column comes back as a pin.
func verdict(e *apiError, recs []replicator.Record) (isolate.Answer, pin) {
	reason := e.Error()
	for _, p := range valuePatterns {
		if m := p.FindStringSubmatch(e.msg); m != nil {
			bad, column := carrying(recs, m[1], reason)
			return isolate.Answer{Kind: isolate.Refused, Bad: bad, Reason: reason}, pin{column: column, value: m[1]}
		}
	}
	if m := notNullPattern.FindStringSubmatch(e.msg); m != nil {
		if !slices.ContainsFunc(recs[0].Fields, func(f replicator.Field) bool { return f.Name == m[1] }) {
			// The request leaves the column out: its shape, not a row, is
			// refused.
			return isolate.Answer{Kind: isolate.TableFailing, Reason: reason}, pin{}
		}
		var bad []isolate.Bad
		for i := range recs {
			if f := fieldOf(&recs[i], m[1]); f != nil && f.Value.IsNull() {
				bad = append(bad, isolate.Bad{Index: i, Reason: reason})
			}
		}
		return isolate.Answer{Kind: isolate.Refused, Bad: bad, Reason: reason}, pin{}
	}
	if tableWords.MatchString(quotedParts.ReplaceAllString(e.msg, `""`)) {
		return isolate.Answer{Kind: isolate.TableFailing, Reason: reason}, pin{}
	}
	return isolate.Answer{Kind: isolate.Refused, Reason: reason}, pin{}
}

// pin is a value PostgreSQL refused for a column; column is "" when the
// message pinned no column.
type pin struct{ column, value string }

// carrying returns the rows that send v in the one column that carries v
// in this request, and that column. A column type's input function refuses
// a value whatever the row, so every such row is refused and no other row
// is blamed. When no row or several columns carry v, the message cannot
// tell and nil sends the request to splitting.
func carrying(recs []replicator.Record, v, reason string) ([]isolate.Bad, string) {
	var bad []isolate.Bad
	column := ""
	for i := range recs {
		for _, f := range sentFields(&recs[i]) {
			if f.Value.IsNull() || inputText(f.Value) != v {
				continue
			}
			if column != "" && column != f.Name {
				return nil, ""
			}
			column = f.Name
			bad = append(bad, isolate.Bad{Index: i, Reason: reason})
		}
	}
	return bad, column
}

// sentFields are the values a request sends for r: its fields, or a
// delete's key, which goes in the filter.
func sentFields(r *replicator.Record) []replicator.Field {
	if r.Op == replicator.OpDelete {
		return r.Key
	}
	return r.Fields
}

// inputText is the text PostgreSQL's input function receives for v: a JSON
// string's content, or the JSON text of anything else.
func inputText(v replicator.Value) string {
	b := replicator.AppendJSON(nil, v)
	var s string
	if len(b) > 0 && b[0] == '"' && json.Unmarshal(b, &s) == nil {
		return s
	}
	return string(b)
}

func fieldOf(r *replicator.Record, name string) *replicator.Field {
	for i := range r.Fields {
		if r.Fields[i].Name == name {
			return &r.Fields[i]
		}
	}
	return nil
}

// scopeReason is the error metric's label for a refusal (2320001), once
// its verdict is known.
func scopeReason(k isolate.Kind) string {
	if k == isolate.TableFailing {
		return apicall.ReasonTable
	}
	return apicall.ReasonRejected
}
