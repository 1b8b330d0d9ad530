package dnsserver

import (
	"regexp"
	"testing"
)

func TestDelegationLabel(t *testing.T) {
	secret := []byte("server secret")
	l := DelegationLabel(secret, "proj-1", "example.com")
	if !regexp.MustCompile(`^[a-z2-7]{32}$`).MatchString(l) {
		t.Fatalf("label %q is not 32 characters of lowercase base32", l)
	}
	same := []string{"example.com.", "EXAMPLE.com", "*.example.com"}
	for _, d := range same {
		if got := DelegationLabel(secret, "proj-1", d); got != l {
			t.Errorf("label for %q = %q, want %q (same domain)", d, got, l)
		}
	}
	for name, got := range map[string]string{
		"other project": DelegationLabel(secret, "proj-2", "example.com"),
		"other domain":  DelegationLabel(secret, "proj-1", "example.org"),
		"other secret":  DelegationLabel([]byte("another"), "proj-1", "example.com"),
		"shifted parts": DelegationLabel(secret, "proj-1example", ".com"),
	} {
		if got == l {
			t.Errorf("%s gives the same label", name)
		}
	}
	target := CNAMETarget(l, "ACME.spine.test")
	if target != l+".acme.spine.test." {
		t.Errorf("CNAMETarget = %q", target)
	}
	if !validName(target) {
		t.Errorf("target %q is not a name the server can store", target)
	}
}
