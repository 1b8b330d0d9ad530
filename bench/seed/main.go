// Command seed fills a Spine data folder with many services, straight into
// the store through the platform layer (the same checks the API applies), so
// that the benchmark can measure a node's start, memory and handshakes with
// up to a million hostnames without a million API calls.
//
//	seed -data DIR -n 1000000 -certs [-store postgres://...] [-domain bench.test]
//	     [-upstream http://127.0.0.1:9000] [-batch 2000] [-workers NCPU] [-max 0]
//
// Services are named s000000, s000001, ... (hostnames s000000.bench.test, ...).
// It bootstraps the default project and its domain when they are missing.
// Services are written -batch at a time, each batch in one transaction
// (platform.CreateServices: one revision bump and one change notice per
// batch).
//
// With -certs it also issues every hostname's certificate with the internal
// CA into the store, where certmagic keeps them (certificate, private key,
// metadata, and the CA's issuance log), and records its status as active, as
// a node that had issued them would have: a restart can then be measured
// without first waiting for N issuances. Keys and signatures are made on
// -workers goroutines (every core by default); the writes follow them, a
// batch of -batch hostnames per transaction (store.PutKeysAndCertStatus).
// Private keys are sealed with the secret key file the node reads
// (-secret-key-file, default secret.key in the data folder, created as the
// node creates it when missing), as the node's store seals them.
//
// There is no deadline unless -max is given. Ctrl-C (or SIGTERM) stops it
// after the batches in flight; what was committed stays, and running it
// again with the same -n and -batch tops up: a batch whose first and last
// names are there is skipped, any other is filtered name by name.
//
// It prints the rates it reached: hostnames per second while creating
// services, certificates per second while issuing them.
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
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
)

type config struct {
	data, dsn, keyFile, domain, upstream string
	n, batch, workers                    int
	certs                                bool
}

func main() {
	var c config
	flag.StringVar(&c.data, "data", ".spine", "Spine data folder")
	flag.StringVar(&c.dsn, "store", "", "store DSN (default sqlite:DATA/spine.db)")
	flag.StringVar(&c.keyFile, "secret-key-file", "", "the secret key file the node reads (default secret.key in the data folder; created if missing and the store holds nothing sealed)")
	flag.IntVar(&c.n, "n", 10000, "number of services (one hostname each)")
	flag.StringVar(&c.domain, "domain", "bench.test", "the default project's domain")
	flag.StringVar(&c.upstream, "upstream", "http://127.0.0.1:9000", "upstream of every service")
	flag.IntVar(&c.batch, "batch", 2000, "services, or hostnames' certificates, written per transaction")
	flag.IntVar(&c.workers, "workers", runtime.NumCPU(), "goroutines making keys and certificates")
	max := flag.Duration("max", 0, "give up after this long (0: no limit; Ctrl-C stops it, a rerun tops up)")
	flag.BoolVar(&c.certs, "certs", false, "also issue every hostname's certificate into the store (internal CA)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "seed:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	if c.batch < 1 || c.workers < 1 || c.n < 0 {
		fmt.Fprintln(os.Stderr, "seed: -batch and -workers must be at least 1, -n at least 0")
		os.Exit(2)
	}
	if c.keyFile == "" {
		c.keyFile = filepath.Join(c.data, "secret.key")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *max > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *max)
		defer cancel()
	}
	if err := run(ctx, c); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(os.Stderr, "seed: stopped (%v); what was committed stays: run it again to top up\n", context.Cause(ctx))
		} else {
			fmt.Fprintln(os.Stderr, "seed:", err)
		}
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return err
	}
	if c.dsn == "" {
		c.dsn = "sqlite:" + filepath.Join(c.data, "spine.db")
	}
	db, err := store.Open(ctx, c.dsn)
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	defer db.Close()
	if err := useKeyring(ctx, db, c.keyFile); err != nil {
		return err
	}
	p := platform.New(db, platform.Options{})
	if _, err := p.Bootstrap(ctx, filepath.Join(c.data, "admin.token")); err != nil {
		return err
	}
	if _, err := p.EnsureDomain(ctx, platform.DefaultProjectID, c.domain, true); err != nil {
		return fmt.Errorf("adding domain %s: %w", c.domain, err)
	}
	start := time.Now()
	created, err := seedServices(ctx, db, p, c)
	el := time.Since(start)
	fmt.Printf("seed: %d services created (%d asked) in %s: %.0f hostnames/s\n", created, c.n, el.Round(time.Millisecond), float64(created)/el.Seconds())
	if err != nil || !c.certs {
		return err
	}
	start = time.Now()
	issued, err := seedCerts(ctx, db, c)
	el = time.Since(start)
	fmt.Printf("seed: %d certificates issued in %s: %.0f certificates/s (%d workers)\n", issued, el.Round(time.Millisecond), float64(issued)/el.Seconds(), c.workers)
	return err
}

// useKeyring gives db the keys of the secret key file at path, creating
// the file as a node does when it is missing and the store holds nothing
// sealed yet, and checks that they open the store's secrets.
func useKeyring(ctx context.Context, db *store.DB, path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		sealed, err := db.HasSealed(ctx)
		if err != nil {
			return err
		}
		if sealed {
			return fmt.Errorf("the store's secrets are sealed and %s is missing: give the node's key file with -secret-key-file", path)
		}
		content, err := secrets.Generate()
		if err != nil {
			return err
		}
		if err := secrets.CreateFile(path, content); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating %s: %w", path, err)
		}
	}
	k, _, err := secrets.ReadFile(path)
	if err != nil {
		return err
	}
	db.SetKeyring(k)
	if err := db.CheckKeyring(ctx); err != nil {
		return fmt.Errorf("checking %s against the store: %w", path, err)
	}
	return nil
}

func serviceName(i int) string { return fmt.Sprintf("s%06d", i) }

// progress prints, at most every 10 s, how far a phase has come.
type progress struct {
	what  string
	n     int
	start time.Time
	last  time.Time
}

func (p *progress) at(done int) {
	if now := time.Now(); now.Sub(p.last) >= 10*time.Second {
		p.last = now
		fmt.Fprintf(os.Stderr, "seed: %s: %d of %d after %s\n", p.what, done, p.n, now.Sub(p.start).Round(time.Second))
	}
}

// seedServices creates the services that are missing, a batch per
// transaction, and returns how many it created.
func seedServices(ctx context.Context, db *store.DB, p *platform.Platform, c config) (int, error) {
	exists := func(i int) (bool, error) {
		_, err := db.GetService(ctx, platform.DefaultProjectID, serviceName(i))
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	created := 0
	pr := progress{what: "services", n: c.n, start: time.Now(), last: time.Now()}
	for lo := 0; lo < c.n; lo += c.batch {
		hi := min(c.n, lo+c.batch)
		first, err := exists(lo)
		if err != nil {
			return created, err
		}
		last, err := exists(hi - 1)
		if err != nil {
			return created, err
		}
		if first && last {
			continue
		}
		var specs []platform.ServiceSpec
		for i := lo; i < hi; i++ {
			if first || last { // a partial batch: filter it
				ok, err := exists(i)
				if err != nil {
					return created, err
				}
				if ok {
					continue
				}
			}
			specs = append(specs, platform.ServiceSpec{Name: serviceName(i), Upstreams: []string{c.upstream}})
		}
		if _, err := p.CreateServices(ctx, platform.DefaultProjectID, specs); err != nil {
			return created, fmt.Errorf("creating %s to %s: %w", serviceName(lo), serviceName(hi-1), err)
		}
		created += len(specs)
		pr.at(hi)
	}
	return created, nil
}

// issueLog is the CA's storage for seeding: the CA records each
// certificate it signs in its issuance log (ca.IssuedPrefix) before handing
// it out; those records are held here and written with the next batch of
// certificates, which follows their signing, instead of one transaction
// each. Every other key goes to the store at once.
type issueLog struct {
	*certs.Storage
	mu      sync.Mutex
	pending []store.KeyValue
}

func (l *issueLog) Store(ctx context.Context, key string, value []byte) error {
	if !strings.HasPrefix(key, ca.IssuedPrefix+"/") {
		return l.Storage.Store(ctx, key, value)
	}
	l.mu.Lock()
	l.pending = append(l.pending, store.KeyValue{Key: key, Value: value})
	l.mu.Unlock()
	return nil
}

// take returns the records held and forgets them.
func (l *issueLog) take() []store.KeyValue {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.pending
	l.pending = nil
	return out
}

// certBatch is what one transaction writes: the keys and statuses of
// some hostnames' certificates.
type certBatch struct {
	kvs      []store.KeyValue
	statuses []store.CertStatus
}

// seedCerts issues the certificate of each hostname that has none in the
// store yet and returns how many it issued: one goroutine picks the
// hostnames of each batch, c.workers make keys and certificates, and this
// one writes the batches as they come.
func seedCerts(ctx context.Context, db *store.DB, c config) (int, error) {
	log := &issueLog{Storage: certs.NewStorage(db, certs.StorageOptions{})}
	authority, err := ca.Load(ctx, log, ca.Options{})
	if err != nil {
		return 0, fmt.Errorf("loading the internal CA: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	host := func(i int) string { return serviceName(i) + "." + c.domain }
	has := func(h string) (bool, error) {
		_, err := db.GetCertStatus(ctx, h)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}

	jobs := make(chan []string, c.workers)
	go func() {
		defer close(jobs)
		for lo := 0; lo < c.n; lo += c.batch {
			hi := min(c.n, lo+c.batch)
			first, err := has(host(lo))
			if err != nil {
				cancel(err)
				return
			}
			last, err := has(host(hi - 1))
			if err != nil {
				cancel(err)
				return
			}
			if first && last {
				continue
			}
			var hosts []string
			for i := lo; i < hi; i++ {
				h := host(i)
				if first || last {
					ok, err := has(h)
					if err != nil {
						cancel(err)
						return
					}
					if ok {
						continue
					}
				}
				hosts = append(hosts, h)
			}
			select {
			case jobs <- hosts:
			case <-ctx.Done():
				return
			}
		}
	}()

	done := make(chan certBatch, c.workers)
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() {
			for hosts := range jobs {
				var b certBatch
				for _, h := range hosts {
					if err := issue(ctx, authority, h, &b); err != nil {
						cancel(fmt.Errorf("issuing for %s: %w", h, err))
						return
					}
				}
				select {
				case done <- b:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()

	issued := 0
	pr := progress{what: "certificates", n: c.n, start: time.Now(), last: time.Now()}
	for b := range done {
		// The records of this batch's certificates were taken before it
		// was sent: they are in what take returns now.
		kvs := append(log.take(), b.kvs...)
		if err := db.PutKeysAndCertStatus(ctx, kvs, b.statuses); err != nil {
			cancel(err)
			break
		}
		issued += len(b.statuses)
		pr.at(issued)
	}
	for range done { // let the workers end
	}
	return issued, context.Cause(ctx)
}

// issue makes a key and a certificate for host, signed by the CA, and adds
// to b what certmagic would store for them and the status a node records.
func issue(ctx context.Context, authority *ca.CA, host string, b *certBatch) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{host}}, key)
	if err != nil {
		return err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return err
	}
	issued, err := authority.Issue(ctx, csr)
	if err != nil {
		return err
	}
	keyPEM, err := certmagic.PEMEncodePrivateKey(key)
	if err != nil {
		return err
	}
	issuerData, err := json.Marshal(issued.Metadata)
	if err != nil {
		return err
	}
	meta, err := json.MarshalIndent(certmagic.CertificateResource{SANs: []string{host}, IssuerData: issuerData}, "", "\t")
	if err != nil {
		return err
	}
	block, _ := pem.Decode(issued.Certificate)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	ik := authority.IssuerKey()
	b.kvs = append(b.kvs,
		store.KeyValue{Key: certmagic.StorageKeys.SitePrivateKey(ik, host), Value: keyPEM},
		store.KeyValue{Key: certmagic.StorageKeys.SiteMeta(ik, host), Value: meta},
		store.KeyValue{Key: certmagic.StorageKeys.SiteCert(ik, host), Value: issued.Certificate})
	b.statuses = append(b.statuses, store.CertStatus{
		Hostname: host, Status: store.CertActive, Issuer: leaf.Issuer.CommonName,
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter,
	})
	return nil
}
