package feishu

import (
	"slices"
	"strings"

	"github.com/replicator-cdc/replicator"
)

// job is the records of one request: upserts sharing one column set, or
// deletes whose filter fits the length limit.
type job struct {
	op   replicator.Op
	recs []replicator.Record
}

// plan splits a batch into requests. Upserts are grouped by column set,
// because PostgREST fills a column missing from a row with NULL: a row
// whose unchanged TOASTed column is absent must not travel with rows that
// set that column. Records that no request can carry come back as
// rejections.
func plan(b *replicator.Batch, maxRows, maxFilter int) ([]job, []replicator.Rejection) {
	if oneColumnSet(b.Records) {
		// The common batch: its requests are slices of it, not copies.
		jobs := make([]job, 0, (len(b.Records)+maxRows-1)/maxRows)
		for chunk := range slices.Chunk(b.Records, maxRows) {
			jobs = append(jobs, job{op: replicator.OpUpsert, recs: chunk})
		}
		return jobs, nil
	}
	return planGrouped(b, maxRows, maxFilter)
}

// planGrouped is plan for any batch: it groups the upserts by column set.
func planGrouped(b *replicator.Batch, maxRows, maxFilter int) ([]job, []replicator.Rejection) {
	var (
		jobs     []job
		rejected []replicator.Rejection
		groups   = make(map[string]int)
		upserts  [][]replicator.Record
		deletes  []replicator.Record
		names    []string
		sig      []byte
		prev     []replicator.Field // the last upsert's fields, in group prevGroup
		prevIdx  int
	)
	for _, r := range b.Records {
		switch r.Op {
		case replicator.OpUpsert:
			// Rows of one table mostly carry the same columns in the same
			// order: then the group is the previous row's.
			if prev != nil && sameNames(prev, r.Fields) {
				upserts[prevIdx] = append(upserts[prevIdx], r)
				continue
			}
			names = names[:0]
			for _, f := range r.Fields {
				names = append(names, f.Name)
			}
			if !slices.IsSorted(names) {
				slices.Sort(names)
			}
			sig = sig[:0]
			for _, n := range names {
				sig = append(append(sig, n...), 0)
			}
			i, ok := groups[string(sig)]
			if !ok {
				i = len(upserts)
				groups[string(sig)] = i
				upserts = append(upserts, nil)
			}
			upserts[i] = append(upserts[i], r)
			prev, prevIdx = r.Fields, i
		case replicator.OpDelete:
			if len(r.Key) != len(b.Table.Key) || slices.ContainsFunc(r.Key, func(f replicator.Field) bool { return f.Value.IsNull() }) {
				rejected = append(rejected, replicator.Rejection{Record: r, Reason: "feishu: a delete needs every key column, not NULL, to address its row"})
				continue
			}
			deletes = append(deletes, r)
		default:
			rejected = append(rejected, replicator.Rejection{Record: r, Reason: "feishu: unsupported operation " + r.Op.String()})
		}
	}
	for _, g := range upserts {
		for chunk := range slices.Chunk(g, maxRows) {
			jobs = append(jobs, job{op: replicator.OpUpsert, recs: chunk})
		}
	}
	return append(jobs, deleteJobs(b.Table.Key, deletes, maxRows, maxFilter)...), rejected
}

// oneColumnSet reports whether recs are upserts that all carry the same
// columns in the same order.
func oneColumnSet(recs []replicator.Record) bool {
	if len(recs) == 0 {
		return false
	}
	for i := range recs {
		if recs[i].Op != replicator.OpUpsert || !sameNames(recs[0].Fields, recs[i].Fields) {
			return false
		}
	}
	return true
}

func sameNames(a, b []replicator.Field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			return false
		}
	}
	return true
}

// deleteJobs cuts deletes so that each filter, as it travels in the URL,
// stays within maxFilter bytes. A single record whose term alone is longer
// still goes, alone.
func deleteJobs(key []string, recs []replicator.Record, maxRows, maxFilter int) []job {
	var jobs []job
	var term []byte
	start, length := 0, filterOverhead(key)
	for i := range recs {
		term = appendTerm(term[:0], key, &recs[i])
		n := urlLen(term) + len("%2C")
		if i > start && (length+n > maxFilter || i-start >= maxRows) {
			jobs = append(jobs, job{op: replicator.OpDelete, recs: recs[start:i]})
			start, length = i, filterOverhead(key)
		}
		length += n
	}
	if start < len(recs) {
		jobs = append(jobs, job{op: replicator.OpDelete, recs: recs[start:]})
	}
	return jobs
}

// filterOverhead is the URL length of the filter around its terms:
// "k=in.()" or "or=()".
func filterOverhead(key []string) int {
	if len(key) == 1 {
		return urlLen(appendEscaped(nil, []byte(key[0]))) + urlLen([]byte("=in.()"))
	}
	return urlLen([]byte("or=()"))
}

// urlLen is the length of b once url.Values has encoded it as a query
// value: unreserved bytes and the space (as '+') stay one byte, every
// other byte becomes %XX.
func urlLen(b []byte) int {
	n := len(b)
	for _, c := range b {
		if !unreserved(c) && c != ' ' {
			n += 2
		}
	}
	return n
}

// deleteFilter builds the filter selecting the records' rows:
// k=in.(v1,v2,...) for a single key column, or
// or=(and(a.eq.1,b.eq.x),...) for a composite key. The API decodes the
// filter parameter once more as a query string of its own (split on '&',
// split on the first '=', percent-decode both halves, '+' becoming a
// space) before it reads PostgREST's grammar, so names and values are
// percent-encoded inside the expression; url.Values encodes the result
// again for the URL.
func deleteFilter(key []string, recs []replicator.Record) string {
	var b []byte
	if len(key) == 1 {
		b = append(appendEscaped(b, []byte(key[0])), "=in.("...)
	} else {
		b = append(b, "or=("...)
	}
	for i := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTerm(b, key, &recs[i])
	}
	return string(append(b, ')'))
}

// appendTerm appends one record's part of the filter: its quoted key value,
// or and(a.eq.v,b.eq.w).
func appendTerm(b []byte, key []string, r *replicator.Record) []byte {
	if len(key) == 1 {
		return appendFilterValue(b, r.Key[0].Value.Raw)
	}
	b = append(b, "and("...)
	for i, k := range key {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendEscaped(b, []byte(k)), ".eq."...)
		b = appendFilterValue(b, r.Key[i].Value.Raw)
	}
	return append(b, ')')
}

// appendFilterValue writes v as a PostgREST list or logic-tree value, then
// percent-encoded for the API's second decoding. Values made only of
// letters, digits, '-' and '_' go as they are; anything else (PostgREST's
// reserved , . : ( ) and quotes, backslashes, spaces, other bytes, the
// empty string, and the words PostgREST gives meaning to) goes in double
// quotes, with " and \ escaped by a backslash. The quotes stay literal: the
// second decoding leaves them alone and PostgREST must see them.
func appendFilterValue(b, v []byte) []byte {
	if plainValue(v) {
		return append(b, v...)
	}
	b = append(b, '"')
	for _, c := range v {
		if c == '"' || c == '\\' {
			b = appendEscapedByte(b, '\\')
		}
		b = appendEscapedByte(b, c)
	}
	return append(b, '"')
}

// appendEscaped percent-encodes every byte of s outside RFC 3986's
// unreserved set (letters, digits, - . _ ~). That covers what the API's
// second decoding would change: '%' (a key "%41" would arrive as "A"), '&'
// and '=' (split points), '+' (decoded as a space), and also ';' (a
// separator for some query parsers), '#', controls and every non-ASCII
// byte, so the rule does not depend on how lenient the API's decoder is.
// Percent-encoding a byte that needed none is harmless: it decodes to
// itself.
func appendEscaped(b, s []byte) []byte {
	for _, c := range s {
		b = appendEscapedByte(b, c)
	}
	return b
}

func appendEscapedByte(b []byte, c byte) []byte {
	const hex = "0123456789ABCDEF"
	if unreserved(c) {
		return append(b, c)
	}
	return append(b, '%', hex[c>>4], hex[c&15])
}

func unreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func plainValue(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	switch strings.ToLower(string(v)) {
	case "null", "true", "false", "unknown":
		return false
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// columnList is the columns parameter: the names of the record's fields.
func columnList(r *replicator.Record) string {
	var b strings.Builder
	for i, f := range r.Fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f.Name)
	}
	return b.String()
}
