package platform

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spine-platform/spine/internal/store"
)

// newTestPlatform returns a Platform over a fresh SQLite store with two
// projects, p1 and p2.
func newTestPlatform(t *testing.T, opts Options) *Platform {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "spine.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, id := range []string{"p1", "p2"} {
		if err := db.CreateProject(ctx, store.Project{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	return New(db, opts)
}

// wantCode fails unless err is a platform *Error with the code, whose message
// contains text.
func wantCode(t *testing.T, err error, code, text string) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != code || !strings.Contains(pe.Message, text) {
		t.Fatalf("error = %#v, want code %q with %q in the message", err, code, text)
	}
}

func TestAddDomainRefusesPublicSuffixes(t *testing.T) {
	p := newTestPlatform(t, Options{})
	ctx := context.Background()
	for name, text := range map[string]string{
		"com":       `"com" is a top-level name`,
		"localhost": `"localhost" is a top-level name`,
		"co.uk":     `"co.uk" is a public suffix`,
		"github.io": `"github.io" is a public suffix`,
		"CO.UK.":    `"co.uk" is a public suffix`,
	} {
		_, err := p.AddDomain(ctx, "p1", name, false)
		wantCode(t, err, "invalid_domain", text)
	}
	for _, name := range []string{"example.com", "example.co.uk", "me.github.io", "app.localhost"} {
		if _, err := p.AddDomain(ctx, "p1", name, false); err != nil {
			t.Errorf("AddDomain(%q): %v", name, err)
		}
	}
	// The operator may vouch for a single label, as `spine up` does.
	if _, err := p.AddDomain(ctx, "p2", "internal", true); err != nil {
		t.Errorf("operator-verified single label: %v", err)
	}
	if ds, _ := p.ListDomains(ctx, "p1"); len(ds) != 4 {
		t.Errorf("p1 holds %d domains, want the 4 registrable ones: %v", len(ds), ds)
	}
}

func TestAddDomainOverlapsAnotherProject(t *testing.T) {
	p := newTestPlatform(t, Options{})
	ctx := context.Background()
	if _, err := p.AddDomain(ctx, "p1", "example.com", false); err != nil {
		t.Fatal(err)
	}
	_, err := p.AddDomain(ctx, "p2", "example.com", false)
	wantCode(t, err, "domain_taken", "belongs to another project")
	_, err = p.AddDomain(ctx, "p2", "app.example.com", false)
	wantCode(t, err, "domain_taken", "overlaps a domain that another project holds")
	_, err = p.AddDomain(ctx, "p1", "example.com", false)
	wantCode(t, err, "conflict", "already in this project")
}

func TestRemoveDomainKeepsHostnamesCovered(t *testing.T) {
	p := newTestPlatform(t, Options{})
	ctx := context.Background()
	for _, d := range []string{"example.com", "other.example"} {
		if _, err := p.AddDomain(ctx, "p1", d, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.CreateService(ctx, "p1", ServiceSpec{Name: "web", Domain: "example.com",
		Hosts: []string{"www.other.example"}, Upstreams: []string{"http://10.0.0.1:80"}}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, p.RemoveDomain(ctx, "p1", "other.example"), "in_use", `domain "other.example" is used by service "web" (hostname "www.other.example"); delete them first`)
	if _, err := p.GetDomain(ctx, "p1", "other.example"); err != nil {
		t.Fatalf("refused removal lost the domain: %v", err)
	}
}

func TestUpstreamProxyLoop(t *testing.T) {
	lan := net.ParseIP("192.0.2.7") // stands for this machine's LAN address
	p := newTestPlatform(t, Options{OwnAddrs: []string{"0.0.0.0:443", "[::]:80", "127.0.0.1:2019", "198.51.100.1:8443"}})
	p.interfaceAddrs = func() ([]net.Addr, error) {
		return []net.Addr{&net.IPNet{IP: net.IPv4(127, 0, 0, 1), Mask: net.CIDRMask(8, 32)}, &net.IPNet{IP: lan, Mask: net.CIDRMask(24, 32)}}, nil
	}
	for _, up := range []string{
		"https://192.0.2.7",          // the wildcard HTTPS listener, through the LAN address
		"https://192.0.2.7:443",      //
		"http://192.0.2.7:80",        // the [::] HTTP listener
		"http://[::1]:80",            //
		"http://localhost:443",       //
		"http://127.0.0.1:2019",      // the API
		"http://LOCALHOST:2019",      //
		"http://198.51.100.1:8443",   // a listener on one address
		"http://app.localhost:443",   //
		"http://0.0.0.0:443",         //
		"https://[::ffff:192.0.2.7]", // the LAN address, IPv4-mapped
		"http://127.0.0.1:02019",     // the API, with a leading zero
		"http://localhost.:2019",     // a trailing dot
		"http://app.localhost.:443",  //
	} {
		if _, err := p.checkUpstream(up); err == nil || !strings.Contains(err.Error(), "proxy loop") {
			t.Errorf("checkUpstream(%q) = %v, want a proxy loop refusal", up, err)
		}
	}
	for _, up := range []string{
		"http://192.0.2.7:2019",       // the API listens on loopback only
		"http://192.0.2.8:443",        // another machine
		"http://198.51.100.1:443",     // not this machine's address
		"http://127.0.0.1:8443",       // 8443 listens on 198.51.100.1 only
		"http://upstream.example:443", // a name is not resolved here
	} {
		if _, err := p.checkUpstream(up); err != nil {
			t.Errorf("checkUpstream(%q) = %v, want it accepted", up, err)
		}
	}
	// A port with leading zeros is stored as the number it is.
	if got, err := p.checkUpstream("http://Upstream.example:009000/"); err != nil || got != "http://upstream.example:9000" {
		t.Errorf("checkUpstream = %q, %v, want http://upstream.example:9000", got, err)
	}
}
