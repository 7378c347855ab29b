package gptbots

import (
	"bytes"
	"encoding/json"
	"strings"
)

// updateAnswer is the documented answer of an update. It is also read from
// inside a {"data":…} envelope, in case the API wraps it like other answers.
type updateAnswer struct {
	FailCount  int           `json:"fail_count"`
	FailDetail []failDetail  `json:"fail_detail"`
	Data       *updateAnswer `json:"data"`
}

type failDetail struct {
	UpsertData struct {
		Filter map[string]json.RawMessage `json:"filter"`
	} `json:"upsert_data"`
	// FailReason is documented as a string in the example and as an array
	// in the field table; both are read.
	FailReason json.RawMessage `json:"fail_reason"`
}

// failures maps the failed items of an update answer to their reasons by
// the key's text. ok is false when some failure cannot be attributed to a
// filter value on keyField.
func failures(body []byte, keyField string) (reasons map[string]string, ok bool, err error) {
	var ans updateAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, false, err
	}
	if ans.FailCount == 0 && len(ans.FailDetail) == 0 && ans.Data != nil {
		ans = *ans.Data
	}
	reasons = make(map[string]string, len(ans.FailDetail))
	for _, d := range ans.FailDetail {
		raw, found := d.UpsertData.Filter[keyField]
		if !found {
			return nil, false, nil
		}
		reasons[keyText(raw)] = reasonText(d.FailReason)
	}
	return reasons, ans.FailCount <= len(reasons), nil
}

func reasonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return strings.Join(list, "; ")
	}
	return string(raw)
}

func decodeNumber(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	return d.Decode(v)
}
