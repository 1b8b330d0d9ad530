package dnsserver

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/mholt/acmez/v3/acme"
	"github.com/miekg/dns"
)

func dnsChallenge(domain, keyAuth string) acme.Challenge {
	return acme.Challenge{
		Type:             acme.ChallengeTypeDNS01,
		Identifier:       acme.Identifier{Type: "dns", Value: domain},
		KeyAuthorization: keyAuth,
	}
}

// A certificate for example.com and *.example.com has two challenges whose
// TXT records share one name; both must be served at once, and cleaning up
// one must leave the other.
func TestSolverTwoValuesAtOneName(t *testing.T) {
	recs := &MemoryStore{}
	udp, _ := startServer(t, Config{Records: recs})
	secret := []byte("s")
	solver := &Solver{
		Records: recs,
		Target: func(domain string) (string, bool) {
			if domain != "example.com" {
				return "", false
			}
			return CNAMETarget(DelegationLabel(secret, "p1", domain), testZone), true
		},
		PropagationDelay: -1,
	}
	target := CNAMETarget(DelegationLabel(secret, "p1", "example.com"), testZone)
	ctx := context.Background()
	apex := dnsChallenge("example.com", "token-apex.thumbprint")
	// ACME names a wildcard's authorization by its base domain; accept either form.
	wild := dnsChallenge("*.example.com", "token-wild.thumbprint")

	for _, c := range []acme.Challenge{apex, wild} {
		if err := solver.Present(ctx, c); err != nil {
			t.Fatalf("Present(%s): %v", c.Identifier.Value, err)
		}
		if err := solver.Wait(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	query := func() []string {
		return txtAnswers(exchange(t, "udp", udp, new(dns.Msg).SetQuestion(target, dns.TypeTXT)))
	}
	want := []string{apex.DNS01KeyAuthorization(), wild.DNS01KeyAuthorization()}
	slices.Sort(want)
	if got := query(); !slices.Equal(got, want) {
		t.Fatalf("served %q, want both digests %q", got, want)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := solver.CleanUp(cancelled, apex); err != nil {
		t.Fatalf("CleanUp with a cancelled context: %v", err)
	}
	if got := query(); !slices.Equal(got, []string{wild.DNS01KeyAuthorization()}) {
		t.Errorf("after cleaning up the apex challenge: %q, want only the wildcard's digest", got)
	}
	if err := solver.CleanUp(ctx, wild); err != nil {
		t.Fatal(err)
	}
	if r := exchange(t, "udp", udp, new(dns.Msg).SetQuestion(target, dns.TypeTXT)); r.Rcode != dns.RcodeNameError {
		t.Errorf("after cleaning up both: rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}

	err := solver.Present(ctx, dnsChallenge("not-delegated.org", "t.k"))
	if err == nil || !strings.Contains(err.Error(), "not-delegated.org is not delegated") {
		t.Errorf("Present for an undelegated domain: %v", err)
	}
	http := dnsChallenge("example.com", "t.k")
	http.Type = acme.ChallengeTypeHTTP01
	if err := solver.Present(ctx, http); err == nil {
		t.Error("Present accepted an http-01 challenge")
	}
}
