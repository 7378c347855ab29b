package feishu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClassify(t *testing.T) {
	errConn := errors.New("connection reset by peer")
	cases := []struct {
		status, code int
		err          error
		want         class
	}{
		{200, 0, nil, classOK},
		{204, 0, nil, classOK},
		{0, 0, errConn, classRetry},
		{0, 0, context.DeadlineExceeded, classRetry},
		{0, 0, io.ErrUnexpectedEOF, classRetry},
		{429, 99991400, nil, classThrottle},
		{400, 99991400, nil, classThrottle},
		{200, 99991400, nil, classThrottle},
		{429, noCode, nil, classThrottle},
		{401, 99991663, nil, classRefresh},
		{400, 99991668, nil, classRefresh},
		{401, 99991677, nil, classRefresh},
		{200, 99991677, nil, classRefresh},
		{400, 99991672, nil, classFatal},
		{400, 99991676, nil, classFatal},
		{400, 99991679, nil, classFatal},
		{400, 99991543, nil, classFatal},
		{401, 99991661, nil, classFatal},
		{400, 2320001, nil, classReject},
		{200, 2320001, nil, classReject},
		{500, 2320001, nil, classReject},
		{500, 500, nil, classRetry},
		{502, noCode, nil, classRetry},
		{503, 0, nil, classRetry},
		{504, 1234, nil, classRetry},
		{200, noCode, nil, classRetry},
		{400, 1234, nil, classFatal},
		{404, noCode, nil, classFatal},
		{403, 0, nil, classFatal},
		{200, 1234, nil, classFatal},
		{301, noCode, nil, classFatal},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, classify(c.status, c.code, c.err), "HTTP %d code %d err %v", c.status, c.code, c.err)
	}
}

func TestReason(t *testing.T) {
	assert.Equal(t, "timeout", reason(classRetry, fmt.Errorf("post: %w", context.DeadlineExceeded)))
	assert.Equal(t, "connection", reason(classRetry, io.EOF))
	assert.Equal(t, "server", reason(classRetry, nil))
	assert.Equal(t, "throttled", reason(classThrottle, nil))
	assert.Equal(t, "token_expired", reason(classRefresh, nil))
	assert.Equal(t, "fatal", reason(classFatal, nil))
}
