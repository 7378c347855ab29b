package feishufake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type reply struct {
	status int
	header http.Header
	Code   int             `json:"code"`
	Msg    string          `json:"msg"`
	Data   json.RawMessage `json:"data"`
}

type client struct {
	t     *testing.T
	s     *Server
	token string
	http  *http.Client
}

func newClient(t *testing.T, opts Options) (*Server, *client) {
	s := New(opts)
	t.Cleanup(s.Close)
	return s, &client{t: t, s: s, token: s.AccessToken(), http: &http.Client{Timeout: 5 * time.Second}}
}

func (c *client) do(method, path string, q url.Values, body []byte, hdr map[string]string) reply {
	c.t.Helper()
	u := c.s.URL() + apiPrefix + c.s.Options().WorkspaceID + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	var r reply
	require.NoError(c.t, json.NewDecoder(resp.Body).Decode(&r))
	r.status, r.header = resp.StatusCode, resp.Header
	return r
}

func recordsBody(t *testing.T, rows string) []byte {
	b, err := json.Marshal(map[string]string{"records": rows})
	require.NoError(t, err)
	return b
}

var upsertHeader = map[string]string{"Prefer": "resolution=merge-duplicates"}

func (c *client) upsert(table, q, rows string) reply {
	c.t.Helper()
	v, err := url.ParseQuery(q)
	require.NoError(c.t, err)
	return c.do(http.MethodPost, "/tables/"+table+"/records", v, recordsBody(c.t, rows), upsertHeader)
}

func customers(t *testing.T, s *Server) {
	require.NoError(t, s.AddTable("customers", []Column{
		{Name: "id", DataType: "bigint", IsUnique: true},
		{Name: "name", DataType: "text"},
		{Name: "note", DataType: "text", AllowNull: true},
		{Name: "balance", DataType: "numeric", AllowNull: true},
	}))
}

func TestEnvelopeAndAuth(t *testing.T) {
	s, c := newClient(t, Options{})
	customers(t, s)
	r := c.do(http.MethodGet, "/tables/customers", nil, nil, nil)
	require.Equal(t, 0, r.Code, r.Msg)
	var schema struct {
		Columns []columnInfo `json:"columns"`
	}
	require.NoError(t, json.Unmarshal(r.Data, &schema))
	require.Len(t, schema.Columns, 5)
	assert.Equal(t, columnInfo{Name: "_id", DataType: "uuid", IsPrimaryKey: true}, schema.Columns[0], "the real answer shows no default for _id")
	assert.Equal(t, columnInfo{Name: "id", DataType: "bigint", IsUnique: true}, schema.Columns[1])

	assert.Equal(t, 2320001, c.do(http.MethodGet, "/tables/nope", nil, nil, nil).Code)

	other := *c
	other.token = ""
	r = other.do(http.MethodGet, "/tables/customers", nil, nil, nil)
	assert.Equal(t, []int{401, 99991661}, []int{r.status, r.Code})
	other.token = "u-forged"
	assert.Equal(t, 99991668, other.do(http.MethodGet, "/tables/customers", nil, nil, nil).Code)
	other.token = s.AccessTokenWithScope("offline_access")
	assert.Equal(t, 99991679, other.upsert("customers", "", `[{"id":1,"name":"a"}]`).Code)

	s.ExpireTokens()
	r = c.do(http.MethodGet, "/tables/customers", nil, nil, nil)
	assert.Equal(t, []int{401, 99991677}, []int{r.status, r.Code})

	c.token = s.AccessToken()
	req, err := http.NewRequest(http.MethodGet, s.URL()+apiPrefix+"ws_other/tables/customers", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), `"code":2320001`)
	assert.Contains(t, string(body), "workspace")
}

func TestUpsertSemantics(t *testing.T) {
	s, c := newClient(t, Options{RequestsPerSecond: -1})
	customers(t, s)
	r := c.upsert("customers", "columns=id,name,note,balance&on_conflict=id",
		`[{"id":1,"name":"a","note":"n1","balance":123456789012345678901234567890.5},{"id":2,"name":"b","note":null,"balance":null}]`)
	require.Equal(t, 0, r.Code, r.Msg)
	var ids struct {
		RecordIDs []string `json:"record_ids"`
	}
	require.NoError(t, json.Unmarshal(r.Data, &ids))
	require.Len(t, ids.RecordIDs, 2)

	// Only listed columns change on conflict: note is left alone.
	r = c.upsert("customers", "columns=id,name&on_conflict=id", `[{"id":1,"name":"A"}]`)
	require.Equal(t, 0, r.Code, r.Msg)
	var again struct {
		RecordIDs []string `json:"record_ids"`
	}
	require.NoError(t, json.Unmarshal(r.Data, &again))
	assert.Equal(t, ids.RecordIDs[:1], again.RecordIDs, "an updated row keeps its id")
	rows := s.Rows("customers")
	require.Len(t, rows, 2)
	assert.Equal(t, "A", rows[0]["name"])
	assert.Equal(t, "n1", rows[0]["note"])
	assert.Equal(t, json.Number("123456789012345678901234567890.5"), rows[0]["balance"])

	for _, bad := range []struct{ q, rows, why string }{
		{"on_conflict=id", `[{"id":3,"name":"c"},{"id":4}]`, "key sets differ"},
		{"columns=id,name&on_conflict=id", `[{"id":3,"name":"c"},{"id":3,"name":"d"}]`, "same key twice"},
		{"columns=id,name,zzz&on_conflict=id", `[{"id":3,"name":"c"}]`, "unknown column"},
		{"on_conflict=id", `[{"id":3,"name":"c","zzz":1}]`, "unknown key"},
		{"columns=id,name&on_conflict=name", `[{"id":3,"name":"c"}]`, "on_conflict not unique"},
		{"columns=id,note&on_conflict=id", `[{"id":1,"note":"x"}]`, "NOT NULL name missing even for an update"},
		{"columns=id,name&on_conflict=id", `[{"id":5,"name":"ok"},{"id":"x","name":"bad"}]`, "bad integer"},
		{"columns=id,name&on_conflict=id", `[{"id":1.5,"name":"bad"}]`, "fraction into bigint"},
		{"on_conflict=id", `{"id":1}`, "not an array"},
	} {
		r := c.upsert("customers", bad.q, bad.rows)
		assert.Equal(t, []int{400, 2320001}, []int{r.status, r.Code}, bad.why)
	}
	assert.Len(t, s.Rows("customers"), 2, "failed requests change nothing")

	// columns given: keys outside it are ignored, missing ones become NULL.
	r = c.upsert("customers", "columns=id,name,note&on_conflict=id", `[{"id":2,"name":"B","zzz":1}]`)
	require.Equal(t, 0, r.Code, r.Msg)
	assert.Nil(t, s.Rows("customers")[1]["note"])

	// Plain insert of an existing key violates the unique constraint.
	r = c.do(http.MethodPost, "/tables/customers/records", nil, recordsBody(t, `[{"id":1,"name":"dup"}]`), nil)
	assert.Equal(t, 2320001, r.Code)
	assert.Contains(t, r.Msg, "duplicate key")

	// records must be a string.
	r = c.do(http.MethodPost, "/tables/customers/records", nil, []byte(`{"records":[{"id":9,"name":"x"}]}`), upsertHeader)
	assert.Equal(t, 2320001, r.Code)
}

func TestCompositeKeyAndRollback(t *testing.T) {
	s, c := newClient(t, Options{RequestsPerSecond: -1})
	require.NoError(t, s.AddTable("lines", []Column{
		{Name: "order_id", DataType: "integer", IsPrimaryKey: true},
		{Name: "line", DataType: "integer", IsPrimaryKey: true},
		{Name: "sku", DataType: "text", IsUnique: true, AllowNull: true},
	}))
	r := c.upsert("lines", "on_conflict=line,order_id", `[{"order_id":1,"line":1,"sku":"a"},{"order_id":1,"line":2,"sku":"b"}]`)
	require.Equal(t, 0, r.Code, r.Msg)
	// The first row takes sku c, the second (new) row wants c too: the
	// unique violation rolls back the first row's update.
	r = c.upsert("lines", "on_conflict=order_id,line", `[{"order_id":1,"line":1,"sku":"c"},{"order_id":1,"line":3,"sku":"c"}]`)
	require.Equal(t, 2320001, r.Code)
	rows := s.Rows("lines")
	require.Len(t, rows, 2)
	assert.Equal(t, "a", rows[0]["sku"])
	r = c.upsert("lines", "on_conflict=order_id,line", `[{"order_id":1,"line":1,"sku":"b"}]`)
	assert.Equal(t, 2320001, r.Code, "unique sku held by another row")
	r = c.upsert("lines", "on_conflict=order_id,line", `[{"order_id":1,"line":2,"sku":"z"},{"order_id":1,"line":1,"sku":"b"}]`)
	require.Equal(t, 0, r.Code, r.Msg)
	assert.Equal(t, "b", s.Rows("lines")[0]["sku"])
}

// TestCompositeUniqueLikeTheRealAPI: a composite unique constraint is
// invisible in the schema answer but enforced, and an on_conflict that no
// unique constraint matches fails as PostgreSQL does.
func TestCompositeUniqueLikeTheRealAPI(t *testing.T) {
	s, c := newClient(t, Options{RequestsPerSecond: -1})
	require.NoError(t, s.AddTable("likes", []Column{
		{Name: "user_id", DataType: "bigint"},
		{Name: "product_id", DataType: "bigint"},
		{Name: "note", DataType: "text", AllowNull: true},
	}, []string{"user_id", "product_id"}))
	r := c.do(http.MethodGet, "/tables/likes", nil, nil, nil)
	require.Equal(t, 0, r.Code, r.Msg)
	var schema struct {
		Columns []columnInfo `json:"columns"`
	}
	require.NoError(t, json.Unmarshal(r.Data, &schema))
	assert.Equal(t, []columnInfo{
		{Name: "_id", DataType: "uuid", IsPrimaryKey: true},
		{Name: "user_id", DataType: "bigint"},
		{Name: "product_id", DataType: "bigint"},
		{Name: "note", DataType: "text", IsAllowNull: true},
	}, schema.Columns)

	r = c.upsert("likes", "columns=user_id,product_id,note&on_conflict=product_id,user_id", `[{"user_id":1,"product_id":2,"note":"a"},{"user_id":1,"product_id":3,"note":"b"}]`)
	require.Equal(t, 0, r.Code, r.Msg)
	r = c.upsert("likes", "columns=user_id,product_id,note&on_conflict=user_id,product_id", `[{"user_id":1,"product_id":2,"note":"A"}]`)
	require.Equal(t, 0, r.Code, r.Msg)
	rows := s.Rows("likes")
	require.Len(t, rows, 2, "a duplicate of the composite key updates its row")
	assert.Equal(t, "A", rows[0]["note"])
	assert.NotEmpty(t, rows[0]["_id"], "the platform fills _id")

	for _, oc := range []string{"user_id", "note", "user_id,note", ""} {
		r = c.upsert("likes", "columns=user_id,product_id,note&on_conflict="+oc, `[{"user_id":7,"product_id":8,"note":"x"}]`)
		if oc == "" {
			assert.Equal(t, 0, r.Code, "the default arbiter is _id: %s", r.Msg)
			continue
		}
		assert.Equal(t, []int{400, 2320001}, []int{r.status, r.Code}, oc)
		assert.Contains(t, r.Msg, "there is no unique or exclusion constraint matching the ON CONFLICT specification", oc)
	}
	r = c.upsert("likes", "columns=user_id,product_id,note", `[{"user_id":1,"product_id":3,"note":"dup"}]`)
	assert.Equal(t, 2320001, r.Code, "a duplicate under another arbiter violates the constraint")
	assert.Contains(t, r.Msg, "duplicate key value violates unique constraint on (user_id, product_id)")
	assert.Len(t, s.Rows("likes"), 3)
}

func TestRowLimit(t *testing.T) {
	s, c := newClient(t, Options{RequestsPerSecond: -1})
	customers(t, s)
	var b strings.Builder
	b.WriteByte('[')
	for i := range 501 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"n"}`, i)
	}
	b.WriteByte(']')
	assert.Equal(t, 2320001, c.upsert("customers", "on_conflict=id", b.String()).Code)
	ok := strings.Replace(b.String(), `,{"id":500,"name":"n"}`, "", 1)
	assert.Equal(t, 0, c.upsert("customers", "on_conflict=id", ok).Code)
	assert.Len(t, s.Rows("customers"), 500)
}

func TestDeleteAndList(t *testing.T) {
	s, c := newClient(t, Options{RequestsPerSecond: -1})
	customers(t, s)
	require.Equal(t, 0, c.upsert("customers", "on_conflict=id", `[{"id":1,"name":"a,b"},{"id":2,"name":"x\"y"},{"id":3,"name":"z"}]`).Code)
	del := func(filter string) reply {
		q := url.Values{}
		if filter != "" {
			q.Set("filter", filter)
		}
		return c.do(http.MethodDelete, "/tables/customers/records", q, nil, nil)
	}
	assert.Equal(t, 2320001, del("").Code)
	assert.Equal(t, 2320001, del("id=in.(1").Code)
	assert.Equal(t, 2320001, del("nope=in.(1)").Code)
	require.Equal(t, 0, del(`name=in.("a,b","x\"y")`).Code)
	rows := s.Rows("customers")
	require.Len(t, rows, 1)
	assert.Equal(t, json.Number("3"), rows[0]["id"])

	for i := 10; i < 25; i++ {
		require.Equal(t, 0, c.upsert("customers", "on_conflict=id", fmt.Sprintf(`[{"id":%d,"name":"n"}]`, i)).Code)
	}
	var seen []json.Number
	token := ""
	for range 10 {
		q := url.Values{"page_size": {"7"}, "filter": {"name=eq.n"}}
		if token != "" {
			q.Set("page_token", token)
		}
		r := c.do(http.MethodGet, "/tables/customers/records", q, nil, nil)
		require.Equal(t, 0, r.Code, r.Msg)
		var page struct {
			Items     string `json:"items"`
			HasMore   bool   `json:"has_more"`
			PageToken string `json:"page_token"`
		}
		require.NoError(t, json.Unmarshal(r.Data, &page))
		d := json.NewDecoder(strings.NewReader(page.Items))
		d.UseNumber()
		var items []map[string]any
		require.NoError(t, d.Decode(&items))
		for _, it := range items {
			seen = append(seen, it["id"].(json.Number))
		}
		if !page.HasMore {
			break
		}
		token = page.PageToken
	}
	assert.Len(t, seen, 15)
	assert.Equal(t, json.Number("24"), seen[14])
	assert.Equal(t, 2320001, c.do(http.MethodGet, "/tables/customers/records", url.Values{"page_size": {"501"}}, nil, nil).Code)
}

func TestRateLimit(t *testing.T) {
	s, c := newClient(t, Options{RequestsPerSecond: 5})
	customers(t, s)
	var throttled reply
	for i := range 8 {
		r := c.upsert("customers", "on_conflict=id", fmt.Sprintf(`[{"id":%d,"name":"n"}]`, i))
		if r.Code != 0 {
			throttled = r
			break
		}
	}
	require.Equal(t, 429, throttled.status)
	assert.Equal(t, 99991400, throttled.Code)
	assert.Equal(t, "5", throttled.header.Get("x-ogw-ratelimit-limit"))
	assert.Equal(t, "1", throttled.header.Get("x-ogw-ratelimit-reset"))
	var admitted []Request
	for _, r := range s.Requests() {
		if r.Code == 0 {
			admitted = append(admitted, r)
		}
	}
	assert.Len(t, admitted, 5)
	assert.Equal(t, 5, MaxPerWindow(admitted, time.Second))
	// Schema calls are not record calls and pass.
	assert.Equal(t, 0, c.do(http.MethodGet, "/tables/customers", nil, nil, nil).Code)
}

func TestFaults(t *testing.T) {
	s, c := newClient(t, Options{RequestsPerSecond: -1, SlowDelay: 2 * time.Second})
	customers(t, s)
	c.http.Timeout = 300 * time.Millisecond
	s.InjectFaults(FaultServerError, FaultThrottle, FaultDrop, FaultLostAnswer, FaultSlow)
	send := func(id int) (reply, error) {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+apiPrefix+s.Options().WorkspaceID+"/tables/customers/records?on_conflict=id",
			bytes.NewReader(recordsBody(t, fmt.Sprintf(`[{"id":%d,"name":"n"}]`, id))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Prefer", "resolution=merge-duplicates")
		resp, err := c.http.Do(req)
		if err != nil {
			return reply{}, err
		}
		defer resp.Body.Close()
		var r reply
		err = json.NewDecoder(resp.Body).Decode(&r)
		r.status = resp.StatusCode
		return r, err
	}
	r, err := send(1)
	require.NoError(t, err)
	assert.Equal(t, 500, r.status)
	r, err = send(2)
	require.NoError(t, err)
	assert.Equal(t, []int{429, 99991400}, []int{r.status, r.Code})
	_, err = send(3)
	assert.Error(t, err, "dropped")
	_, err = send(4)
	assert.Error(t, err, "lost answer")
	_, err = send(5)
	assert.Error(t, err, "slow answer times out")
	r, err = send(6)
	require.NoError(t, err)
	assert.Equal(t, 0, r.Code)
	var ids []string
	for _, row := range s.Rows("customers") {
		ids = append(ids, string(row["id"].(json.Number)))
	}
	assert.Equal(t, []string{"4", "6"}, ids, "only the lost answer and the clean call applied")

	s.SetFaultRate(1, FaultServerError)
	r, err = send(7)
	require.NoError(t, err)
	assert.Equal(t, 500, r.status)
	s.SetFaultRate(0)
	var faults []Fault
	for _, q := range s.Requests() {
		faults = append(faults, q.Fault)
	}
	assert.Subset(t, faults, []Fault{FaultServerError, FaultThrottle, FaultDrop, FaultLostAnswer, FaultSlow})
}
