package feishu

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBorrowSavedToken(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := Config{Name: "lark", StateDir: t.TempDir(), OAuth: OAuth{AppID: "cli_a", AppSecret: "s", RefreshToken: "r-config"}}
	save := func(access string, expires time.Time) {
		t.Helper()
		require.NoError(t, saveTokenDoc(&base, tokenFile{AppID: "cli_a", AccessToken: access, AccessTokenExpiresAt: expires, RefreshToken: "r-saved"}))
	}

	_, err := BorrowSavedToken(base, 10*time.Minute, now)
	require.ErrorIs(t, err, ErrNoBorrowableToken, "no token file")

	save("u-soon", now.Add(5*time.Minute))
	_, err = BorrowSavedToken(base, 10*time.Minute, now)
	require.ErrorIs(t, err, ErrNoBorrowableToken, "expires within the margin")

	save("u-fresh", now.Add(time.Hour))
	got, err := BorrowSavedToken(base, 10*time.Minute, now)
	require.NoError(t, err)
	require.Equal(t, "u-fresh", got.UserAccessToken)
	require.False(t, got.UsesOAuth(), "a borrowed token is never refreshed")

	fixed := Config{Name: "lark", UserAccessToken: "u-configured"}
	got, err = BorrowSavedToken(fixed, 10*time.Minute, now)
	require.NoError(t, err)
	require.Equal(t, fixed, got)
}
