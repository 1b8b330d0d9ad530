// Spine's ACME issuer: certmagic still drives when to obtain and renew, and
// acmez speaks the protocol; this file holds the account and the order.
//
// It replaces certmagic.ACMEIssuer for one reason: that issuer builds its
// acmez client itself, and acmez then polls authorizations and orders at a
// fixed 250 ms. Against a CA that validates in milliseconds (Pebble, a
// company CA, Let's Encrypt on a warm path) two such polls were most of
// the time from "service created" to "served over HTTPS". Here polls start
// after 10 ms and back off to 1 s (pacing.go), which is also kinder to a
// slow CA than a fixed short interval. The challenges are answered by the
// edge from the store (challenge.go), so any node answers for any other.

package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
	"golang.org/x/time/rate"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/logging"
	"github.com/spine-platform/spine/internal/store"
)

// ACMEIssuer configures one ACME CA for Config.Issuers. New binds a copy to
// the manager: its storage (account, challenges), the edge's challenge
// answers and, for wildcard names, Config.DNS01Solver.
type ACMEIssuer struct {
	// CA is the ACME directory URL. It must be https (http only for a
	// CA on this machine).
	CA string

	// Email is the account's contact; may be empty.
	Email string

	// EAB is the External Account Binding some CAs require (ZeroSSL,
	// Google); nil for none.
	EAB *acme.EAB

	// TrustedRoots, if set, are the only roots trusted for the CA's own
	// HTTPS (Pebble, a company CA); else the system's.
	TrustedRoots *x509.CertPool

	// Resolver is the DNS server (host:port) CAA records are checked with
	// before an order; default: the system's first resolver.
	Resolver string

	// Budget is what the CA allows the account (new orders, certificates
	// per registered domain, failed validations), kept with Config.Orders
	// (budget.go): an order past it waits instead. Nil: the CA's limits
	// are not tracked (projects' orders per hour still are, with
	// Config.Orders). See LetsEncryptBudget.
	Budget *store.CABudget

	// DisableHTTPChallenge and DisableTLSALPNChallenge turn off one of the
	// two challenges the edge answers for non-wildcard names.
	DisableHTTPChallenge, DisableTLSALPNChallenge bool
}

// IssuerKey names the CA in storage paths: certificates live under
// certificates/<key>/. It is certmagic.ACMEIssuer's key for the same URL,
// so certificates stored by either are found by both.
func (a *ACMEIssuer) IssuerKey() string {
	key := a.CA
	if u, err := url.Parse(a.CA); err == nil {
		key = u.Host
		if p := strings.Trim(strings.NewReplacer("/", "-", "\\", "-").Replace(u.Path), "-"); p != "" {
			key += "-" + p
		}
	}
	return key
}

// Issue is not available on the template; New binds it.
func (a *ACMEIssuer) Issue(context.Context, *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	return nil, errors.New("certs: an ACMEIssuer must be bound by certs.New")
}

// Timeouts of the conversation with a CA. Each request is bounded; a whole
// order is bounded by certmagic's obtain timeout.
const (
	acmeDialTimeout     = 10 * time.Second
	acmeRequestTimeout  = 30 * time.Second
	acmeIssueTimeout    = 5 * time.Minute // a whole order, DNS propagation included
	acmeFirstPoll       = 10 * time.Millisecond
	acmeMaxPollInterval = time.Second
)

// acmeIssuer is an ACMEIssuer bound to a manager: a certmagic.Issuer.
type acmeIssuer struct {
	ACMEIssuer
	key        string
	storage    certmagic.Storage
	challenges *challenges
	dns01      acmez.Solver // wildcard names only; nil otherwise
	log        *slog.Logger
	client     *acme.Client   // shared: directory and nonces are reused
	orders     *orderLimiters // the manager's
	book       OrderBook      // the manager's Config.Orders; nil: no budget is kept
	waits      *budgetWaits   // the manager's

	mu sync.Mutex
	// acct is the account as first loaded or registered, kept for the
	// process's life (one per issuer): an account another node registers
	// later is not seen, and need not be, until the CA refuses this one
	// (accountDoesNotExist), when forgetAccount drops it.
	acct *acme.Account
}

func (m *Manager) bindACME(t ACMEIssuer, storage certmagic.Storage, dns01 acmez.Solver) *acmeIssuer {
	iss := &acmeIssuer{
		ACMEIssuer: t,
		key:        t.IssuerKey(),
		storage:    storage,
		challenges: m.challenges,
		dns01:      dns01,
		log:        m.log,
		orders:     m.orders,
		book:       m.book,
		waits:      &m.waits,
	}
	dialer := &net.Dialer{Timeout: acmeDialTimeout, KeepAlive: time.Minute}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   acmeDialTimeout,
		ResponseHeaderTimeout: acmeRequestTimeout,
		IdleConnTimeout:       time.Minute,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{RootCAs: t.TrustedRoots, MinVersion: tls.VersionTLS12},
	}
	iss.client = &acme.Client{
		Directory:    t.CA,
		UserAgent:    "spine certmagic acmez",
		HTTPClient:   &http.Client{Transport: newPacer(m.metrics.ACMETransport(iss.key, tr), acmeFirstPoll, acmeMaxPollInterval), Timeout: acmeRequestTimeout},
		PollInterval: acmeFirstPoll,                           // the pacer spaces the polls that follow
		PollTimeout:  certmagic.DefaultACME.CertObtainTimeout, // an authorization or order pending longer fails
		Logger:       logging.Acmez(m.log.Handler()).With("ca", t.CA),
	}
	return iss
}

func (a *acmeIssuer) IssuerKey() string { return a.key }

// Issue obtains a certificate for the names of csr. It waits on the
// per-CA and account rate limiter (see Config.ACMEOrderBurst), so that a runaway
// burst of new names does not hit the CA's limits.
func (a *acmeIssuer) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	s, ok := a.storage.(*Storage)
	if !ok {
		return a.issue(ctx, csr)
	}
	// certmagic calls Issue holding the name's lock in s. If its lease cannot
	// be renewed (the store is gone), stop: the certificate could not be
	// stored, and another node will place the order once the lease ends.
	ictx, stop := s.IssuanceContext(ctx, namesOf(csr))
	defer stop()
	cert, err := a.issue(ictx, csr)
	if err != nil && errors.Is(context.Cause(ictx), ErrLeaseLost) {
		return nil, fmt.Errorf("%v: order stopped: %w (%w)", namesOf(csr), context.Cause(ictx), err)
	}
	return cert, err
}

func (a *acmeIssuer) issue(ctx context.Context, csr *x509.CertificateRequest) (_ *certmagic.IssuedCertificate, err error) {
	names := namesOf(csr)
	ctx, cancel := context.WithTimeout(ctx, acmeIssueTimeout)
	defer cancel()
	rec := &retryAfterRecorder{}
	ctx = context.WithValue(ctx, retryAfterKey{}, rec)
	if dir, err := a.client.GetDirectory(ctx); err == nil && dir.Meta != nil {
		if err := checkCAA(ctx, a.Resolver, dir.Meta.CAAIdentities, names); err != nil {
			return nil, fmt.Errorf("%v: %w (ca=%s)", names, err, a.CA)
		}
	}
	// The CA's budget, before the order (budget.go).
	ticket, err := a.reserve(ctx, names)
	if err != nil {
		return nil, err
	}
	defer func() { a.finish(ctx, ticket, err) }()
	if err := a.orders.get(a.CA, a.Email).Wait(ctx); err != nil {
		return nil, err
	}
	var chains []acme.Certificate
	for attempt := 0; ; attempt++ {
		acct, err := a.account(ctx)
		if err != nil {
			return nil, fmt.Errorf("%v: ACME account at %s: %w", names, a.CA, err)
		}
		params, err := acmez.OrderParametersFromCSR(acct, csr)
		if err != nil {
			return nil, fmt.Errorf("order parameters from CSR: %w", err)
		}
		params.Replaces = a.replaces(ctx, names)
		client := &acmez.Client{Client: a.client, ChallengeSolvers: a.solvers(names)}
		a.log.Debug("ordering certificate", "identifiers", names, "ca", a.CA, "account", acct.Location)
		chains, err = client.ObtainCertificate(ctx, params)
		var p acme.Problem
		if err != nil && attempt == 0 && errors.As(err, &p) && p.Type == acme.ProblemTypeAccountDoesNotExist {
			// The CA was reset or forgot the account: register anew.
			a.log.Warn("ACME account unknown to the CA; registering a new one", "ca", a.CA, "account", acct.Location)
			if err := a.forgetAccount(ctx); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			err = fmt.Errorf("%v: %w (ca=%s)", names, err, a.CA)
			if until := rec.get(); until.After(time.Now()) {
				err = &retryAfterError{err: err, until: until}
			}
			return nil, err
		}
		break
	}
	if len(chains) == 0 {
		return nil, fmt.Errorf("%v: the CA returned no certificate chain (ca=%s)", names, a.CA)
	}
	return &certmagic.IssuedCertificate{Certificate: chains[0].ChainPEM, Metadata: chains[0]}, nil
}

// GetRenewalInfo asks the CA when cert should be renewed (ARI, RFC 9773);
// certmagic calls it for certificates this issuer issued.
func (a *acmeIssuer) GetRenewalInfo(ctx context.Context, cert certmagic.Certificate) (acme.RenewalInfo, error) {
	return a.client.GetRenewalInfo(ctx, cert.Leaf)
}

// solvers are the challenges this order may use: DNS-01 for wildcard
// names, else HTTP-01 and TLS-ALPN-01 answered by the edge.
func (a *acmeIssuer) solvers(names []string) map[string]acmez.Solver {
	out := map[string]acmez.Solver{}
	for _, n := range names {
		if hostname.IsWildcard(n) {
			if a.dns01 != nil {
				out[acme.ChallengeTypeDNS01] = a.dns01
			}
			return out
		}
	}
	if !a.DisableHTTPChallenge {
		out[acme.ChallengeTypeHTTP01] = edgeSolver{a.challenges}
	}
	if !a.DisableTLSALPNChallenge {
		out[acme.ChallengeTypeTLSALPN01] = edgeSolver{a.challenges}
	}
	return out
}

// replaces returns the certificate this order renews, for the CA's
// records (ARI "replaces": renewals it asked for are not rate limited),
// when the CA offers ARI and this issuer's certificate for the names is
// in storage; else nil. On certmagic's third attempt it is left out, in
// case the CA refuses the reference itself.
func (a *acmeIssuer) replaces(ctx context.Context, names []string) *x509.Certificate {
	if n, ok := ctx.Value(certmagic.AttemptsCtxKey).(*int); ok && *n == 2 {
		return nil
	}
	if len(names) == 0 {
		return nil
	}
	dir, err := a.client.GetDirectory(ctx)
	if err != nil || dir.RenewalInfo == "" {
		return nil
	}
	pemBytes, err := a.storage.Load(ctx, certmagic.StorageKeys.SiteCert(a.key, names[0]))
	if err != nil {
		return nil
	}
	leaf, err := parseLeaf(pemBytes)
	if err != nil || time.Now().After(leaf.NotAfter) {
		return nil
	}
	return leaf
}

// Account keys in storage, per CA and contact.
func (a *acmeIssuer) accountKeys() (reg, key string) {
	who := a.Email
	if who == "" {
		who = "default"
	}
	base := "acme/" + a.key + "/spine-accounts/" + certmagic.StorageKeys.Safe(who)
	return base + ".json", base + ".key"
}

// account returns the ACME account, from memory, else from storage, else
// registered with the CA (under a storage lock, so that nodes sharing the
// store register one account, not one each).
func (a *acmeIssuer) account(ctx context.Context) (acme.Account, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.acct != nil {
		return *a.acct, nil
	}
	acct, err := a.loadAccount(ctx)
	if errors.Is(err, fs.ErrNotExist) {
		lock := "acme_account_" + a.key
		if err := a.storage.Lock(ctx, lock); err != nil {
			return acme.Account{}, fmt.Errorf("locking account registration: %w", err)
		}
		defer a.storage.Unlock(context.WithoutCancel(ctx), lock)
		if acct, err = a.loadAccount(ctx); errors.Is(err, fs.ErrNotExist) {
			acct, err = a.register(ctx)
		}
	}
	if err != nil {
		return acme.Account{}, err
	}
	a.acct = &acct
	return acct, nil
}

func (a *acmeIssuer) loadAccount(ctx context.Context) (acme.Account, error) {
	regKey, keyKey := a.accountKeys()
	reg, err := a.storage.Load(ctx, regKey)
	if err != nil {
		return acme.Account{}, err
	}
	keyPEM, err := a.storage.Load(ctx, keyKey)
	if err != nil {
		return acme.Account{}, err
	}
	var acct acme.Account
	if err := json.Unmarshal(reg, &acct); err != nil {
		return acme.Account{}, fmt.Errorf("stored account %s is damaged: %w", regKey, err)
	}
	if acct.PrivateKey, err = certmagic.PEMDecodePrivateKey(keyPEM); err != nil {
		return acme.Account{}, fmt.Errorf("stored account key %s is damaged: %w", keyKey, err)
	}
	return acct, nil
}

// register makes a new account with the CA and saves it. The terms of
// service are agreed to: the operator chose the CA.
func (a *acmeIssuer) register(ctx context.Context) (acme.Account, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return acme.Account{}, err
	}
	acct := acme.Account{PrivateKey: key, TermsOfServiceAgreed: true}
	if a.Email != "" {
		acct.Contact = []string{"mailto:" + a.Email}
	}
	if a.EAB != nil {
		if err := acct.SetExternalAccountBinding(ctx, a.client, *a.EAB); err != nil {
			return acme.Account{}, fmt.Errorf("external account binding: %w", err)
		}
	}
	if acct, err = a.client.NewAccount(ctx, acct); err != nil {
		return acme.Account{}, fmt.Errorf("registering with the CA: %w", err)
	}
	keyPEM, err := certmagic.PEMEncodePrivateKey(acct.PrivateKey)
	if err != nil {
		return acme.Account{}, err
	}
	reg, err := json.Marshal(acct)
	if err != nil {
		return acme.Account{}, err
	}
	regKey, keyKey := a.accountKeys()
	// Key first: a registration without its key would be useless.
	if err := a.storage.Store(ctx, keyKey, keyPEM); err != nil {
		return acme.Account{}, fmt.Errorf("saving the account key: %w", err)
	}
	if err := a.storage.Store(ctx, regKey, reg); err != nil {
		return acme.Account{}, fmt.Errorf("saving the account: %w", err)
	}
	a.log.Info("registered ACME account", "ca", a.CA, "account", acct.Location)
	return acct, nil
}

// forgetAccount drops the account from memory and storage, so that the
// next order registers a new one.
func (a *acmeIssuer) forgetAccount(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acct = nil
	regKey, keyKey := a.accountKeys()
	for _, k := range []string{regKey, keyKey} {
		if err := a.storage.Delete(ctx, k); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("forgetting the account the CA no longer knows: %w", err)
		}
	}
	return nil
}

// Orders per CA and account: a batch of up to Config.ACMEOrderBurst new
// names is ordered at once, then one every Config.ACMEOrderInterval.
// certmagic's own limiter (10 per 10 s, a burst of 10) made the 11th
// service of a batch wait up to 10 s; the sustained rate here is the same,
// and a CA's own limits (Let's Encrypt: 300 new orders per account per 3
// hours) are far above the burst.
const (
	DefaultACMEOrderBurst    = 50
	DefaultACMEOrderInterval = time.Second
)

// orderLimiters holds a Manager's limiter per CA and account contact: one
// per configured CA, so bounded by the configuration.
type orderLimiters struct {
	burst    int
	interval time.Duration

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newOrderLimiters(burst int, interval time.Duration) *orderLimiters {
	if burst <= 0 {
		burst = DefaultACMEOrderBurst
	}
	if interval <= 0 {
		interval = DefaultACMEOrderInterval
	}
	return &orderLimiters{burst: burst, interval: interval, m: map[string]*rate.Limiter{}}
}

func (o *orderLimiters) get(ca, email string) *rate.Limiter {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := ca + "," + email
	l := o.m[k]
	if l == nil {
		l = rate.NewLimiter(rate.Every(o.interval), o.burst)
		o.m[k] = l
	}
	return l
}

// namesOf lists the identifiers of csr: DNS names, then IP addresses.
func namesOf(csr *x509.CertificateRequest) []string {
	names := append([]string(nil), csr.DNSNames...)
	for _, ip := range csr.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && csr.Subject.CommonName != "" {
		names = append(names, csr.Subject.CommonName)
	}
	return names
}
