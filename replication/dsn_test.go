package replication

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConnectNeverShowsThePassword checks both ways of connecting refuse a
// DSN whose password pgx would read partly as the host, or cannot read, with
// a message that holds no piece of the password, before dialling anything.
func TestConnectNeverShowsThePassword(t *testing.T) {
	pieces := []string{"Zq7", "Xk9", "Wv3"}
	for _, dsn := range []string{
		"postgres://u:Zq7@Xk9@127.0.0.1:1/app",
		"postgres://u:Zq7/Xk9:Wv3@127.0.0.1:1/app",
		"postgres://u:Zq7Xk9/127.0.0.1/app",
		"host=127.0.0.1 port=1 password=Zq7 Xk9 dbname=app",
	} {
		t.Run(dsn, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, sqlErr := ConnectSQL(ctx, dsn)
			require.Error(t, sqlErr)
			assert.Nil(t, conn)
			repl, replErr := ConnectReplication(ctx, dsn)
			require.Error(t, replErr)
			assert.Nil(t, repl)
			for _, err := range []error{sqlErr, replErr} {
				assert.Contains(t, err.Error(), "source.dsn")
				for _, p := range pieces {
					assert.NotContains(t, err.Error(), p)
				}
			}
		})
	}
}
