package certs

import (
	"testing"

	"github.com/caddyserver/certmagic"
)

// storageKeyInputs are names and issuer keys in key form and out of it:
// what a node serves, what certmagic's issuers are keyed by, and hostile
// text Safe must rewrite (case, spaces, "*", "+", ":", "..", "/", bytes
// outside ASCII).
var storageKeyInputs = []string{
	"", ".", "..", "...", "a", "s000001.bench.test", "app.example.com", "*.example.com", "*", "*.",
	"*..example.com", "**.example.com", "x*.example.com", "xn--bcher-kva.example", "a-b_c@d.e",
	"App.Example.COM", " app.example.com ", "a b", "a+b", "a:8443", "a..b", "a...b", ".a.", "../../etc/passwd",
	"a/b", "a\\b", "bücher.example", "a\x00b", "a\nb", "local", "acme-v02.api.letsencrypt.org-directory",
	"127.0.0.1:14000-dir", "*.*.example.com", "wildcard_.example.com", "-", "_", "@",
}

// TestStorageKeysAreCertmagics checks the keys a stored certificate's
// look-up reads against certmagic's KeyBuilder, which wrote them.
func TestStorageKeysAreCertmagics(t *testing.T) {
	for _, issuer := range storageKeyInputs {
		for _, name := range storageKeyInputs {
			checkStorageKeys(t, issuer, name)
		}
	}
}

// TestKeyFormAllocatesNothing: the point of safeKey is the names a node
// serves, which must cost no allocation.
func TestKeyFormAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = safeKey("s000001.bench.test") }); n != 0 {
		t.Fatalf("safeKey of a name in key form: %v allocations, want 0", n)
	}
}

func checkStorageKeys(t *testing.T, issuer, name string) {
	t.Helper()
	k := certmagic.StorageKeys
	if got, want := safeKey(name), k.Safe(name); got != want {
		t.Fatalf("safeKey(%q) = %q, certmagic's %q", name, got, want)
	}
	got := siteKeysOf(issuer, name)
	want := siteKeys{prefix: k.CertsSitePrefix(issuer, name), cert: k.SiteCert(issuer, name), key: k.SitePrivateKey(issuer, name)}
	if got != want {
		t.Fatalf("siteKeysOf(%q, %q) = %+v, certmagic's %+v", issuer, name, got, want)
	}
}

// FuzzStorageKeys: for any issuer key and name, the keys are certmagic's.
func FuzzStorageKeys(f *testing.F) {
	for _, s := range storageKeyInputs {
		f.Add("local", s)
		f.Add(s, "s000001.bench.test")
	}
	f.Fuzz(func(t *testing.T, issuer, name string) {
		checkStorageKeys(t, issuer, name)
	})
}
