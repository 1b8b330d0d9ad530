package dnsserver

import (
	"context"
	"fmt"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
	"github.com/spine-platform/spine/internal/hostname"
)

// Solver solves ACME DNS-01 challenges for delegated domains: for a
// challenge on domain D it writes the key authorization digest as a TXT
// record at Target(D) (the name the customer's _acme-challenge.D CNAME
// points to) and removes it in CleanUp. Several values can be present at
// one name at once: a wildcard and its apex share _acme-challenge.
//
// With certmagic, set it as the DNS-01 solver of an ACME issuer:
//
//	certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
//		CA:          certmagic.LetsEncryptProductionCA,
//		DNS01Solver: &dnsserver.Solver{Records: kvStore, Target: target},
//	})
//
// certmagic then solves only DNS-01 with that issuer (no HTTP-01 or
// TLS-ALPN-01). With acmez directly:
//
//	acmez.Client{ChallengeSolvers: map[string]acmez.Solver{acme.ChallengeTypeDNS01: solver}}
type Solver struct {
	// Records receives the TXT records; it should be the RecordStore the
	// Server answers from (a KVStore for a fleet). Required.
	Records RecordWriter
	// Target returns the delegation target of a domain (no "*." prefix),
	// CNAMETarget(DelegationLabel(...), zone), and false if the domain is not
	// delegated to Spine. Required.
	Target func(domain string) (target string, ok bool)
	// PropagationDelay is how long Wait pauses after Present so that every
	// node's cached read of the name has expired before the CA looks.
	// Default: 1s (KVStore's default CacheTTL); negative: no pause.
	PropagationDelay time.Duration
}

var (
	_ acmez.Solver = (*Solver)(nil)
	_ acmez.Waiter = (*Solver)(nil)
)

func (s *Solver) target(chal acme.Challenge) (string, error) {
	if chal.Type != acme.ChallengeTypeDNS01 {
		return "", fmt.Errorf("dnsserver: solver handles dns-01 challenges, not %q", chal.Type)
	}
	domain := hostname.TrimWildcard(hostname.Fold(chal.Identifier.Value))
	t, ok := s.Target(domain)
	if !ok {
		return "", fmt.Errorf("dnsserver: %s is not delegated to Spine for DNS-01 (no _acme-challenge CNAME target)", domain)
	}
	return t, nil
}

// Present writes the challenge's TXT value at the domain's delegation target.
func (s *Solver) Present(ctx context.Context, chal acme.Challenge) error {
	t, err := s.target(chal)
	if err != nil {
		return err
	}
	if err := s.Records.AddTXT(ctx, t, chal.DNS01KeyAuthorization()); err != nil {
		return fmt.Errorf("dnsserver: presenting DNS-01 challenge for %s: %w", chal.Identifier.Value, err)
	}
	return nil
}

// Wait pauses for PropagationDelay.
func (s *Solver) Wait(ctx context.Context, _ acme.Challenge) error {
	d := s.PropagationDelay
	if d == 0 {
		d = time.Second
	}
	if d < 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CleanUp removes the challenge's TXT value, leaving other values at the
// same name in place. It runs even if ctx is already cancelled (CleanUp
// often follows a cancelled attempt), bounded by 30 seconds.
func (s *Solver) CleanUp(ctx context.Context, chal acme.Challenge) error {
	t, err := s.target(chal)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.Records.DeleteTXT(ctx, t, chal.DNS01KeyAuthorization()); err != nil {
		return fmt.Errorf("dnsserver: cleaning up DNS-01 challenge for %s: %w", chal.Identifier.Value, err)
	}
	return nil
}
