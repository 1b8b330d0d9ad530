package certs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"

	"github.com/spine-platform/spine/internal/pebbletest"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store"
)

func TestPacerBacksOffPerURL(t *testing.T) {
	p := newPacer(http.DefaultTransport, 10*time.Millisecond, time.Second)
	now := time.Unix(1e9, 0)
	var got []time.Duration
	at := now
	for range 10 {
		// Each poll arrives as soon as the previous one was allowed.
		wait := p.reserve("https://ca/authz/1", at)
		at = at.Add(wait)
		got = append(got, at.Sub(now))
	}
	want := []time.Duration{0, 20, 60, 140, 300, 620, 1260, 2260, 3260, 4260}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("poll times %v, want %v ms", got, want)
		}
	}
	if w := p.reserve("https://ca/authz/2", now); w != 0 {
		t.Errorf("first request to another URL waits %v", w)
	}
	// A poll that comes late (the CA said Retry-After) does not wait more.
	if w := p.reserve("https://ca/authz/1", at.Add(time.Hour)); w != 0 {
		t.Errorf("late poll waits %v", w)
	}
}

func TestPacerIsBounded(t *testing.T) {
	p := newPacer(http.DefaultTransport, 10*time.Millisecond, time.Second)
	now := time.Now()
	for i := range maxPaced + 100 {
		p.reserve(fmt.Sprintf("https://ca/order/%d", i), now)
	}
	if n := len(p.seen); n > maxPaced {
		t.Errorf("%d URLs remembered, bound %d", n, maxPaced)
	}
}

func TestIsPostAsGet(t *testing.T) {
	for _, tc := range []struct {
		body string
		want bool
	}{
		{`{"protected":"eyJ","payload":"","signature":"abc"}`, true},
		{`{"protected":"eyJ","payload":"e30","signature":"abc"}`, false}, // {} : a challenge response
		{`{"protected":"eyJ","signature":"abc"}`, false},
		{`not json "payload"`, false},
	} {
		req, _ := http.NewRequest(http.MethodPost, "https://ca/x", strings.NewReader(tc.body))
		if got := isPostAsGet(req); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.body, got, tc.want)
		}
		// The body is still there for the real request.
		var b bytes.Buffer
		b.ReadFrom(req.Body)
		if b.String() != tc.body {
			t.Errorf("body consumed: %q", b.String())
		}
	}
}

// Nodes sharing a store register one ACME account between them, and a
// restarted node uses it again.
func TestACMEAccountRegisteredOnceAndReused(t *testing.T) {
	dns := pebbletest.StartDNS(t)
	tlsLn, httpLn := listen(t), listen(t)
	p := pebbletest.Start(t, pebbletest.Options{HTTPPort: portOf(httpLn.Addr().String()), TLSPort: portOf(tlsLn.Addr().String()), Resolver: dns.Addr})
	shared := &certmagic.FileStorage{Path: storageDir(t)}
	issuers := func(int, int) []certmagic.Issuer { return []certmagic.Issuer{pebbleIssuer(p, nil)} }

	e := newACMEEnv(t, acmeOptions{dns: dns, tlsLn: tlsLn, httpLn: httpLn, storage: shared, issuers: issuers})
	// A second manager on the same storage stands for another node; its
	// challenges are answered by the first's listeners through storage.
	other, err := New(Config{Storage: shared, Issuers: issuers(0, 0), Status: &fakeStatus{}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Stop()
	// Both nodes manage every name, as nodes of a fleet do; each name is
	// ordered by whichever takes its lock first.
	names := []string{"one.example.test", "two.example.test", "three.example.test"}
	e.m.Sync(context.Background(), names)
	other.Sync(context.Background(), names)
	for _, n := range names {
		e.waitActive(t, n)
		poll.Until(t, "the other node's view of "+n, waitTimeout, poll.True(func() bool { return other.Status(n).Status == store.CertActive }))
	}
	if n := p.Accounts(); n != 1 {
		t.Errorf("%d ACME accounts registered by two nodes sharing a store, want 1", n)
	}

	// A node started later finds the account in the store.
	again, err := New(Config{Storage: shared, Issuers: issuers(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Stop()
	iss := again.magic.Load().Issuers[0].(*acmeIssuer)
	acct, err := iss.account(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if acct.Location == "" || acct.Status != acme.StatusValid || acct.PrivateKey == nil {
		t.Errorf("account loaded from the store: %+v", acct)
	}
	if n := p.Accounts(); n != 1 {
		t.Errorf("%d ACME accounts after a restart, want still 1", n)
	}
}

func TestACMEExternalAccountBinding(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	mac := base64.RawURLEncoding.EncodeToString(key)

	dns := pebbletest.StartDNS(t)
	tlsLn, httpLn := listen(t), listen(t)
	p := pebbletest.Start(t, pebbletest.Options{HTTPPort: portOf(httpLn.Addr().String()), TLSPort: portOf(tlsLn.Addr().String()), Resolver: dns.Addr, EAB: map[string]string{"kid-1": mac}})

	var mu sync.Mutex
	withEAB := true
	e := newACMEEnv(t, acmeOptions{dns: dns, tlsLn: tlsLn, httpLn: httpLn, issuers: func(int, int) []certmagic.Issuer {
		mu.Lock()
		defer mu.Unlock()
		return []certmagic.Issuer{pebbleIssuer(p, func(i *ACMEIssuer) {
			if withEAB {
				i.EAB = &acme.EAB{KeyID: "kid-1", MACKey: mac}
			}
		})}
	}})
	e.m.Sync(context.Background(), []string{"eab.example.test"})
	e.waitActive(t, "eab.example.test")
	if _, err := e.dial("eab.example.test", p.Roots()); err != nil {
		t.Fatalf("certificate obtained with EAB does not verify: %v", err)
	}

	// Without the binding, the CA refuses, and the status says what to set.
	mu.Lock()
	withEAB = false
	mu.Unlock()
	e2 := newACMEEnv(t, acmeOptions{dns: dns, issuers: func(int, int) []certmagic.Issuer {
		return []certmagic.Issuer{pebbleIssuer(p, nil)}
	}})
	e2.m.Sync(context.Background(), []string{"noeab.example.test"})
	poll.Until(t, "the certificate to fail", waitTimeout, poll.True(func() bool { return e2.m.Status("noeab.example.test").Status == store.CertFailed }))
	if msg := e2.m.Status("noeab.example.test").Error; !strings.Contains(msg, "external account binding") {
		t.Errorf("failure says %q; want it to name the external account binding", msg)
	}
}

// A CA that refuses with a Retry-After header (and no time in its problem
// text) holds further attempts until then, and the status says until when.
func TestACMERetryAfterHeaderHoldsRetries(t *testing.T) {
	dns := pebbletest.StartDNS(t)
	tlsLn, httpLn := listen(t), listen(t)
	p := pebbletest.Start(t, pebbletest.Options{HTTPPort: portOf(httpLn.Addr().String()), TLSPort: portOf(tlsLn.Addr().String()), Resolver: dns.Addr})
	until := time.Now().Add(time.Hour)
	p.SetRateLimited(until)
	e := newACMEEnv(t, acmeOptions{dns: dns, tlsLn: tlsLn, httpLn: httpLn, issuers: func(int, int) []certmagic.Issuer {
		return []certmagic.Issuer{pebbleIssuer(p, nil)}
	}})
	e.m.Sync(context.Background(), []string{"limited.example.test"})
	poll.Until(t, "the certificate to fail", waitTimeout, poll.True(func() bool { return e.m.Status("limited.example.test").Status == store.CertFailed }))
	held, ok := e.m.holds.get("limited.example.test", time.Now())
	if !ok || held.Before(until.Add(-5*time.Second)) || held.After(until.Add(5*time.Second)) {
		t.Errorf("held until %v (%v), want about %v", held, ok, until)
	}
	msg := e.m.Status("limited.example.test").Error
	if !strings.Contains(msg, "rate limited by the certificate authority until "+held.UTC().Format("2006-01-02T15:04")) {
		t.Errorf("status says %q; want the time retries resume", msg)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"120", now.Add(2 * time.Minute), true},
		{"Fri, 27 Nov 2026 11:00:00 GMT", now.Add(time.Hour), true},
		{"99999999", now.Add(maxRetryAfter), true},
		{"-1", time.Time{}, false},
		{"soon", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
