package fleet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// BenchmarkSnapshot writes the snapshot of n services (one hostname each,
// a certificate in memory for 10,000 of them: the default CertCacheSize),
// sealed with a keyring as a node's is, then again after one service
// changed, after one certificate changed and after nothing changed (the
// writer's 5 s tick), the same by shard (SnapshotSource.Shards, a node's
// source), and reads it as a node starting with the store away
// does. It reports the bytes and files of each write and the time of each
// step (one run each: go test -run ^$ -bench Snapshot -benchtime 1x).
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				benchmarkSnapshot(b, n)
			}
		})
	}
}

func benchmarkSnapshot(b *testing.B, n int) {
	const cached = 10_000
	k, _ := testKeyring(b)
	svcs := make([]store.Service, n)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range svcs {
		name := fmt.Sprintf("s%07d", i)
		svcs[i] = store.Service{ID: fmt.Sprintf("%032x", sha256.Sum256([]byte(name)))[:32], ProjectID: fmt.Sprintf("p%04d", i%1000), Name: name,
			Domain: "customers.test", Hostnames: []string{name + ".customers.test"}, Upstreams: []string{"http://10.0.0.1:8080"},
			CreatedAt: created, UpdatedAt: created}
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issue := func(host string, serial int64) *tls.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
			NotBefore: created, NotAfter: created.Add(90 * 24 * time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			b.Fatal(err)
		}
		return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	certs := make(map[string]*tls.Certificate, cached)
	for i := 0; i < cached; i++ {
		h := svcs[i*(n/cached)].Hostnames[0]
		certs[h] = issue(h, int64(i+1))
	}
	src := &SnapshotSource{Services: svcs, Sum: [32]byte{1}, Certificate: func(h string) *tls.Certificate { return certs[h] },
		TicketKeys: [][32]byte{{1}, {2}}, Keyring: k}
	dir := b.TempDir()
	w := NewSnapshotWriter(dir, func() *SnapshotSource { return src }, discard())
	step := func(what string) {
		runtime.GC() // each step pays for its own garbage only
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		start, cpu := time.Now(), cpuTime()
		if err := w.Write(); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc), what+"-alloc-B")
		b.ReportMetric(float64(m1.Mallocs-m0.Mallocs), what+"-allocs")
		b.ReportMetric((cpuTime()-cpu).Seconds()*1000, what+"-cpu-ms")
		b.ReportMetric(float64(w.wrote.bytes), what+"-bytes")
		b.ReportMetric(float64(w.wrote.files), what+"-files")
		b.ReportMetric(d.Seconds()*1000, what+"-ms")
	}
	b.StopTimer()
	step("first")

	// One service changed: a new upstream, and a new Sum.
	svcs2 := append([]store.Service(nil), svcs...)
	svcs2[n/2].Upstreams = []string{"http://10.0.0.2:8080"}
	src = &SnapshotSource{Services: svcs2, Sum: [32]byte{2}, Certificate: src.Certificate, TicketKeys: src.TicketKeys, Keyring: k}
	step("service")

	// One certificate renewed.
	h := svcs[0].Hostnames[0]
	certs[h] = issue(h, cached+1)
	step("cert")

	step("unchanged")

	// A source by shard, as a node's is (SnapshotSource.Shards, and
	// CertificatesVersion, unchanged here): its first write lists and
	// digests every shard and looks up every hostname (and writes every
	// shard: the services in ID order), a change of one service lists one
	// and looks up its hostnames.
	shards := newTestShards(svcs2)
	src = &SnapshotSource{Shards: shards, Certificate: src.Certificate, CertificatesVersion: func() uint64 { return 0 },
		TicketKeys: src.TicketKeys, Keyring: k}
	step("shards-first")
	changed := svcs2[n/3]
	changed.Upstreams = []string{"http://10.0.0.3:8080"}
	shards.put(changed)
	step("shards-service")
	if w.wrote.shards != 1 {
		b.Fatalf("one service changed: %d shards listed", w.wrote.shards)
	}
	step("shards-unchanged")

	// Certificates entered the cache (a node's handshakes for names not
	// in memory): the write after them looks up every hostname again (its
	// CertificatesVersion moved), writes the new certificates' files and
	// the certificate names, and removes nothing.
	for i := range 100 {
		h := svcs[i*(n/cached)+1].Hostnames[0]
		certs[h] = issue(h, int64(cached+2+i))
	}
	version := uint64(1)
	src.CertificatesVersion = func() uint64 { return version }
	w.rescanned = w.rescanned.Add(-snapshotRescan / 2) // past rescanPace, not yet due anyway
	step("shards-certs")
	if w.wrote.scanned != shardCount {
		b.Fatalf("certificates changed: %d shards' hostnames looked up", w.wrote.scanned)
	}

	start, cpu := time.Now(), cpuTime()
	s, err := ReadSnapshot(dir, k)
	if err != nil {
		b.Fatal(err)
	}
	read, readCPU := time.Since(start), cpuTime()-cpu
	byName := s.CertificatesByName(discard())
	b.ReportMetric(read.Seconds()*1000, "read-ms")
	b.ReportMetric(readCPU.Seconds()*1000, "read-cpu-ms")
	b.ReportMetric(time.Since(start).Seconds()*1000, "read+certs-ms")
	b.ReportMetric((cpuTime()-cpu).Seconds()*1000, "read+certs-cpu-ms")
	if len(s.Services) != n || len(byName) != cached+100 {
		b.Fatalf("read %d services and %d certificates, want %d and %d", len(s.Services), len(byName), n, cached+100)
	}
	b.StartTimer()
}

// cpuTime is the processor time (user and system) the process has used:
// on a loaded machine, a steadier figure than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
