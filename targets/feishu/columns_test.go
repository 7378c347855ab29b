package feishu

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// The mapping completes updates only for the columns TargetColumns calls
// required: NOT NULL without a default, never the platform's _id.
func TestTargetColumns(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	require.NoError(t, e.fake.AddTable("lines", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsUnique: true},
		{Name: "qty", DataType: "numeric", AllowNull: true},
		{Name: "sku", DataType: "text"},
		{Name: "status", DataType: "text", Default: "new"},
	}))
	columns, required, err := e.writer().TargetColumns(context.Background(), "lines")
	require.NoError(t, err)
	require.Equal(t, []string{"_id", "id", "qty", "sku", "status"}, columns)
	require.Equal(t, []string{"id", "sku"}, required)

	_, _, err = e.writer().TargetColumns(context.Background(), "nope")
	require.Error(t, err)
}
