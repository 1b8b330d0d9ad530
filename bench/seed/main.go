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
//
// With -certs it also issues every hostname's certificate with the internal
// CA straight into the store (where certmagic keeps them) and records its
// status as active, as a node that had issued them would have: a restart
// can then be measured without first waiting for N issuances.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/certs"
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
	withCerts := flag.Bool("certs", false, "also issue every hostname's certificate into the store (internal CA)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *max)
	defer cancel()
	if err := run(ctx, *data, *dsn, *n, *domain, *upstream, *withCerts); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, data, dsn string, n int, domain, upstream string, withCerts bool) error {
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
	if !withCerts {
		return nil
	}
	start = time.Now()
	issued, err := seedCerts(ctx, db, n, domain)
	if err != nil {
		return err
	}
	fmt.Printf("seed: %d certificates issued in %s\n", issued, time.Since(start).Round(time.Millisecond))
	return nil
}

// seedCerts issues the certificate of each hostname that has none in the
// store yet, with 8 workers.
func seedCerts(ctx context.Context, db *store.DB, n int, domain string) (int, error) {
	st := certs.NewStorage(db, certs.StorageOptions{})
	c, err := ca.Load(ctx, st, ca.Options{})
	if err != nil {
		return 0, fmt.Errorf("loading the internal CA: %w", err)
	}
	var (
		next, issued atomic.Int64
		wg           sync.WaitGroup
		errOnce      sync.Once
		firstErr     error
	)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				host := fmt.Sprintf("s%06d.%s", i, domain)
				ok, err := seedCert(ctx, db, st, c, host)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("issuing for %s: %w", host, err) })
					return
				}
				if ok {
					issued.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(issued.Load()), firstErr
}

func seedCert(ctx context.Context, db *store.DB, st *certs.Storage, c *ca.CA, host string) (bool, error) {
	certKey := certmagic.StorageKeys.SiteCert(c.IssuerKey(), host)
	if st.Exists(ctx, certKey) {
		return false, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return false, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{host}}, key)
	if err != nil {
		return false, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return false, err
	}
	issued, err := c.Issue(ctx, csr)
	if err != nil {
		return false, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return false, err
	}
	issuerData, err := json.Marshal(issued.Metadata)
	if err != nil {
		return false, err
	}
	meta, err := json.Marshal(certmagic.CertificateResource{SANs: []string{host}, IssuerData: issuerData})
	if err != nil {
		return false, err
	}
	block, _ := pem.Decode(issued.Certificate)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false, err
	}
	for _, kv := range []struct {
		key   string
		value []byte
	}{
		{certmagic.StorageKeys.SitePrivateKey(c.IssuerKey(), host), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})},
		{certmagic.StorageKeys.SiteMeta(c.IssuerKey(), host), meta},
		{certKey, issued.Certificate},
	} {
		if err := st.Store(ctx, kv.key, kv.value); err != nil {
			return false, err
		}
	}
	return true, db.PutCertStatus(ctx, store.CertStatus{
		Hostname: host, Status: store.CertActive, Issuer: leaf.Issuer.CommonName,
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter,
	})
}
