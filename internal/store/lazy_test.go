package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/store/storetest"
)

// OpenLazy returns at once even when PostgreSQL cannot be reached; calls
// then fail with ErrUnavailable. On a reachable database it migrates in
// the background and then works like Open.
func TestOpenLazy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	down, err := store.OpenLazy(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatalf("OpenLazy on a closed port: %v", err)
	}
	defer down.Close()
	if _, err := down.ListServices(ctx, ""); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("ListServices with the database down: %v, want ErrUnavailable", err)
	}

	up, err := store.OpenLazy(ctx, storetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	poll.Until(t, "the schema migrated", time.Minute, func() error {
		if _, err := up.ListNodes(ctx); err != nil {
			return fmt.Errorf("%w (schema error: %v)", err, up.SchemaError())
		}
		return nil
	})
}
