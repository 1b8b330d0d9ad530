package node

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node/config"
)

// Start refuses an invalid Config before it creates anything.
func TestStartValidatesFirst(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, err := Start(context.Background(), config.Config{DataDir: dir, LeafLifetime: time.Minute})
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Field != "LeafLifetime" {
		t.Fatalf("Start = %v, want the LeafLifetime refused", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data folder exists after a refused start: %v", err)
	}
}

// A listen address another server holds is a FieldError of its field that
// says so.
func TestStartRefusesTakenAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, err = Start(t.Context(), config.Config{DataDir: t.TempDir(), Settings: edge.Settings{HTTPSAddr: taken.Addr().String(), HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler)})
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Field != "HTTPSAddr" || !strings.Contains(err.Error(), "listening for HTTPS: ") ||
		!strings.HasSuffix(err.Error(), "(is another server using it? pick another address)") {
		t.Fatalf("Start on a taken HTTPS address: %v; want a FieldError of HTTPSAddr asking for another address", err)
	}
}
