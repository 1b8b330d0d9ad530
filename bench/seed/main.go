// Command seed fills a Spine data folder with many services, straight into
// the store through the platform layer (the same checks the API applies), so
// the benchmark can measure startup time and memory with 10k or 100k
// hostnames without 100k API calls.
//
//	seed -data DIR -n 10000 -domain bench.test -upstream http://127.0.0.1:9000
//
// Services are named s000000, s000001, ... (hostnames s000000.bench.test, ...).
// It bootstraps the default project and its domain when they are missing, and
// skips services that already exist, so it can be run again to top up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

func main() {
	data := flag.String("data", ".spine", "Spine data folder")
	dsn := flag.String("store", "", "store DSN (default sqlite:DATA/spine.db)")
	n := flag.Int("n", 10000, "number of services (one hostname each)")
	domain := flag.String("domain", "bench.test", "the default project's domain")
	upstream := flag.String("upstream", "http://127.0.0.1:9000", "upstream of every service")
	max := flag.Duration("max", 30*time.Minute, "give up after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *max)
	defer cancel()
	if err := run(ctx, *data, *dsn, *n, *domain, *upstream); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, data, dsn string, n int, domain, upstream string) error {
	if dsn == "" {
		if err := os.MkdirAll(data, 0o700); err != nil {
			return err
		}
		dsn = "sqlite:" + filepath.Join(data, "spine.db")
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	defer db.Close()
	p := platform.New(db, platform.Options{})
	if _, err := p.Bootstrap(ctx, filepath.Join(data, "admin.token")); err != nil {
		return err
	}
	if _, err := p.EnsureDomain(ctx, platform.DefaultProjectID, domain, true); err != nil {
		return fmt.Errorf("adding domain %s: %w", domain, err)
	}
	start := time.Now()
	created := 0
	for i := range n {
		spec := platform.ServiceSpec{Name: fmt.Sprintf("s%06d", i), Upstreams: []string{upstream}}
		_, err := p.CreateService(ctx, platform.DefaultProjectID, spec)
		var pe *platform.Error
		if errors.As(err, &pe) && pe.Kind == platform.Conflict {
			continue
		}
		if err != nil {
			return fmt.Errorf("creating %s: %w", spec.Name, err)
		}
		created++
	}
	fmt.Printf("seed: %d services created (%d asked) in %s\n", created, n, time.Since(start).Round(time.Millisecond))
	return nil
}
