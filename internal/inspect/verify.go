package inspect

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
)

// RootSource is a set of trusted roots and where they come from.
type RootSource struct {
	// Name says where the roots come from, as the report shows it, for
	// example "--ca ca.pem".
	Name  string
	Certs []*x509.Certificate
}

// trust is one place roots are trusted from, as a pool.
type trust struct {
	name string
	pool *x509.CertPool
}

// trustSources returns the root sources in the order they are tried: the
// configured ones, then the system's store.
func (in *inspector) trustSources() []trust {
	var out []trust
	for _, src := range in.cfg.Roots {
		p := x509.NewCertPool()
		for _, c := range src.Certs {
			p.AddCert(c)
		}
		out = append(out, trust{name: src.Name, pool: p})
	}
	if !in.cfg.NoSystemRoots {
		if p, err := x509.SystemCertPool(); err == nil {
			out = append(out, trust{name: "the system trust store", pool: p})
		}
	}
	return out
}

// describe turns the server's certificates into the report's form.
func describe(chain []*x509.Certificate) []Certificate {
	out := make([]Certificate, 0, len(chain))
	for i, c := range chain {
		sum := sha256.Sum256(c.Raw)
		out = append(out, Certificate{
			Index:              i,
			Subject:            c.Subject.String(),
			Names:              certNames(c),
			Issuer:             c.Issuer.String(),
			Serial:             strings.ToUpper(c.SerialNumber.Text(16)),
			Key:                keyDescription(c.PublicKey),
			SignatureAlgorithm: c.SignatureAlgorithm.String(),
			NotBefore:          c.NotBefore.UTC(),
			NotAfter:           c.NotAfter.UTC(),
			CA:                 c.IsCA,
			SelfSigned:         selfSigned(c),
			SHA256:             hex.EncodeToString(sum[:]),
		})
	}
	return out
}

func certNames(c *x509.Certificate) []string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

func keyDescription(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// selfSigned reports whether c names itself as its issuer and its
// signature checks out with its own key.
func selfSigned(c *x509.Certificate) bool {
	return string(c.RawIssuer) == string(c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

func signedWords(child, parent *x509.Certificate) string {
	return fmt.Sprintf("%s is signed by %s: its %s signature checks out with the issuer's %s public key",
		label(child), label(parent), child.SignatureAlgorithm, keyDescription(parent.PublicKey))
}

// label names a certificate for a sentence: its common name, or its subject.
func label(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return fmt.Sprintf("%q", c.Subject.CommonName)
	}
	if s := c.Subject.String(); s != "" {
		return fmt.Sprintf("%q", s)
	}
	if names := certNames(c); len(names) > 0 {
		return fmt.Sprintf("the certificate for %s", strings.Join(names, ", "))
	}
	return "a certificate without a subject"
}

// verifier checks a chain step by step.
type verifier struct {
	chain   []*x509.Certificate // as sent
	name    string              // the server name, or the IP address
	now     time.Time
	sources []trust
	fetch   func(ctx context.Context, url string) ([]byte, error) // AIA; nil: none
	v       *Verification
}

// verify checks chain for name at now against sources, step by step:
// each signature, the root and where it is trusted from, the name, the
// validity windows. Unlike x509.Verify it does not stop at the first
// problem, so that an expired certificate still shows a sound chain.
func verify(ctx context.Context, chain []*x509.Certificate, name string, now time.Time, sources []trust, fetch func(context.Context, string) ([]byte, error)) *Verification {
	vf := &verifier{chain: chain, name: name, now: now, sources: sources, fetch: fetch, v: &Verification{}}
	if len(chain) == 0 {
		vf.v.Failure = &Failure{Step: "root", Reason: "no_certificate", Message: "the server sent no certificate"}
		return vf.v
	}
	path, source, err := vf.findPath()
	if err == nil {
		vf.pathSteps(path, source)
	} else {
		vf.brokenSteps(ctx, err)
	}
	vf.hostnameStep()
	vf.validityStep(path)
	vf.v.OK = vf.v.Failure == nil
	return vf.v
}

func (vf *verifier) step(name string, ok bool, detail string) {
	vf.v.Steps = append(vf.v.Steps, Step{Step: name, OK: ok, Detail: detail})
}

func (vf *verifier) fail(step, reason, msg string) {
	vf.step(step, false, msg)
	if vf.v.Failure == nil {
		vf.v.Failure = &Failure{Step: step, Reason: reason, Message: msg}
	}
}

// findPath returns a path from the leaf to a root of one of the sources,
// built from the certificates the server sent. A path that is sound but
// out of its validity window is still returned (it is looked for again at
// times inside the leaf's window), so that the window is reported on its
// own, by validityStep.
func (vf *verifier) findPath() ([]*x509.Certificate, string, error) {
	leaf := vf.chain[0]
	inter := x509.NewCertPool()
	for _, c := range vf.chain[1:] {
		inter.AddCert(c)
	}
	// When the certificates the server sent share a moment of validity,
	// its middle is the best other time to look at; a leaf's own window
	// comes next.
	times := []time.Time{vf.now}
	from, until := leaf.NotBefore, leaf.NotAfter
	for _, c := range vf.chain[1:] {
		if c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	if from.Before(until) {
		times = append(times, from.Add(until.Sub(from)/2))
	}
	times = append(times, leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore)/2))
	var best error
	for _, src := range vf.sources {
		for i, t := range times {
			chains, err := leaf.Verify(x509.VerifyOptions{
				Roots: src.pool, Intermediates: inter, CurrentTime: t,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err == nil {
				return slices.MinFunc(chains, func(a, b []*x509.Certificate) int { return len(a) - len(b) }), src.name, nil
			}
			if !timeError(err) {
				best = preferred(best, err)
				break
			}
			if i == 0 {
				best = preferred(best, err)
			}
		}
	}
	if best == nil {
		best = x509.UnknownAuthorityError{Cert: leaf}
	}
	return nil, "", best
}

func timeError(err error) bool {
	var ci x509.CertificateInvalidError
	return errors.As(err, &ci) && ci.Reason == x509.Expired
}

// preferred keeps the more telling of two errors: one that reached a
// trusted root beats "unknown authority".
func preferred(old, err error) error {
	var ua x509.UnknownAuthorityError
	if old == nil || errors.As(old, &ua) && !errors.As(err, &ua) {
		return err
	}
	return old
}

// pathSteps reports a path that ends at a trusted root.
func (vf *verifier) pathSteps(path []*x509.Certificate, source string) {
	for i := 0; i+1 < len(path); i++ {
		child, parent := path[i], path[i+1]
		if err := child.CheckSignatureFrom(parent); err != nil {
			vf.fail("signature", "bad_signature", fmt.Sprintf("the signature of %s by %s does not check out: %v", label(child), label(parent), err))
			continue
		}
		vf.step("signature", true, signedWords(child, parent))
	}
	root := path[len(path)-1]
	sent := "the server need not send a root: the client holds its own copy"
	if slices.ContainsFunc(vf.chain, func(c *x509.Certificate) bool { return c.Equal(root) }) {
		sent = "the server sent the root too, which is harmless: only the client's own copy counts"
	}
	vf.v.Root = root.Subject.String()
	vf.v.RootSource = source
	for _, c := range path {
		vf.v.Path = append(vf.v.Path, c.Subject.String())
	}
	vf.step("root", true, fmt.Sprintf("the chain ends at root %s, trusted from %s; %s", label(root), source, sent))
}

// brokenSteps explains a chain that reaches no trusted root: it follows
// the certificates the server sent from the leaf, link by link, and says
// where the chain breaks and why.
func (vf *verifier) brokenSteps(ctx context.Context, err error) {
	sent := []*x509.Certificate{vf.chain[0]}
	used := map[int]bool{0: true}
	for {
		cur := sent[len(sent)-1]
		if selfSigned(cur) {
			break
		}
		next := -1
		for i, c := range vf.chain {
			if !used[i] && string(c.RawSubject) == string(cur.RawIssuer) {
				next = i
				if cur.CheckSignatureFrom(c) == nil {
					break
				}
			}
		}
		if next < 0 {
			break
		}
		parent := vf.chain[next]
		if sigErr := cur.CheckSignatureFrom(parent); sigErr != nil {
			vf.fail("signature", "bad_signature", fmt.Sprintf("bad signature: %s names %s as its issuer, but the signature does not check out with that certificate's key (%v): the certificate was altered, or the server sends the wrong intermediate", label(cur), label(parent), sigErr))
			return
		}
		vf.step("signature", true, signedWords(cur, parent))
		used[next] = true
		sent = append(sent, parent)
	}
	last := sent[len(sent)-1]
	for _, c := range sent {
		vf.v.Path = append(vf.v.Path, c.Subject.String())
	}
	where := vf.sourceNames()

	var ua x509.UnknownAuthorityError
	if !errors.As(err, &ua) {
		reason, msg := classify(err)
		vf.fail("root", reason, msg)
		return
	}
	switch {
	case selfSigned(last) && len(sent) == 1:
		vf.fail("root", "self_signed", fmt.Sprintf("self-signed: %s signed itself, so nothing but the certificate vouches for it, and it is not in %s. Anyone can make such a certificate; trust it (--ca FILE) only if you know where it comes from", label(last), where))
	case selfSigned(last):
		vf.fail("root", "unknown_issuer", fmt.Sprintf("unknown issuer: the chain ends at root %s, which is not in %s. A client that does not trust this root refuses the connection; if the root is yours, give it with --ca FILE", label(last), where))
	default:
		vf.missingIssuer(ctx, last, where, len(sent))
	}
}

// missingIssuer explains a chain whose last certificate's issuer was
// neither sent nor trusted: a missing intermediate, or an unknown issuer.
func (vf *verifier) missingIssuer(ctx context.Context, last *x509.Certificate, where string, sent int) {
	issuer := fmt.Sprintf("%q", last.Issuer.String())
	if last.Issuer.CommonName != "" {
		issuer = fmt.Sprintf("%q", last.Issuer.CommonName)
	}
	// The issuer's certificate may be published at the URL the
	// certificate names (Authority Information Access), as browsers fetch it.
	if vf.fetch != nil {
		for _, url := range last.IssuingCertificateURL {
			c, err := vf.fetchIssuer(ctx, url, last)
			if err != nil {
				vf.step("signature", false, fmt.Sprintf("the issuer's certificate, fetched from %s (Authority Information Access), did not help: %v", url, err))
				continue
			}
			inter := x509.NewCertPool()
			for _, s := range vf.chain[1:] {
				inter.AddCert(s)
			}
			inter.AddCert(c)
			for _, src := range vf.sources {
				chains, err := vf.chain[0].Verify(x509.VerifyOptions{Roots: src.pool, Intermediates: inter, CurrentTime: vf.now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
				if err != nil {
					continue
				}
				root := chains[0][len(chains[0])-1]
				vf.fail("root", "missing_intermediate", fmt.Sprintf("missing intermediate: the server did not send the certificate of %s, which signed %s. It is published at %s and chains up to root %s, trusted from %s, so the chain is sound, but the server must send that intermediate certificate with its own: browsers that fetch it work, most other clients (curl, Go, Python) refuse the connection", issuer, label(last), url, label(root), src.name))
				return
			}
		}
	}
	if !last.IsCA {
		vf.fail("root", "missing_intermediate", fmt.Sprintf("missing intermediate: the server sent only %s, signed by %s, and not the certificate of %s, which is not in %s either. Certificate authorities sign servers' certificates with an intermediate, never with the root itself: the server must send that intermediate certificate with its own", plural(sent, "certificate"), issuer, issuer, where))
		return
	}
	vf.fail("root", "unknown_issuer", fmt.Sprintf("unknown issuer: the chain ends at %s, signed by %s, which the server did not send and which is not in %s. If that certificate authority is yours, give its root with --ca FILE", label(last), issuer, where))
}

// fetchIssuer downloads the certificate at url and checks that it signed c.
func (vf *verifier) fetchIssuer(ctx context.Context, url string, c *x509.Certificate) (*x509.Certificate, error) {
	b, err := vf.fetch(ctx, url)
	if err != nil {
		return nil, err
	}
	if p, _ := pem.Decode(b); p != nil {
		b = p.Bytes
	}
	issuer, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("not a certificate: %w", err)
	}
	if err := c.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("it did not sign %s: %w", label(c), err)
	}
	return issuer, nil
}

func (vf *verifier) sourceNames() string {
	if len(vf.sources) == 0 {
		return "any trust store (none was given)"
	}
	var names []string
	for _, s := range vf.sources {
		names = append(names, s.name)
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// classify turns an x509 error other than "unknown authority" into a
// reason and plain words.
func classify(err error) (reason, msg string) {
	var ci x509.CertificateInvalidError
	var ia x509.InsecureAlgorithmError
	switch {
	case errors.As(err, &ci):
		who := label(ci.Cert)
		switch ci.Reason {
		case x509.NotAuthorizedToSign:
			return "not_a_ca", fmt.Sprintf("%s signed another certificate of the chain, but it is not a certificate authority's certificate (no CA basic constraint)", who)
		case x509.IncompatibleUsage:
			return "not_for_server_auth", fmt.Sprintf("%s may not be used for a server: its extended key usage does not include server authentication", who)
		case x509.CANotAuthorizedForThisName, x509.TooManyConstraints, x509.UnconstrainedName, x509.NameConstraintsWithoutSANs:
			return "name_constraints", fmt.Sprintf("%s breaks the name constraints of a certificate authority above it: %v", who, err)
		case x509.Expired:
			return "expired", fmt.Sprintf("expired: %v", err)
		}
		return "invalid", fmt.Sprintf("%s is not valid in this chain: %v", who, err)
	case errors.As(err, &ia):
		return "insecure_algorithm", fmt.Sprintf("insecure algorithm: a certificate of the chain is signed with %s, which clients no longer accept", x509.SignatureAlgorithm(ia))
	}
	return "invalid", err.Error()
}

func (vf *verifier) hostnameStep() {
	leaf := vf.chain[0]
	names := certNames(leaf)
	if err := leaf.VerifyHostname(vf.name); err != nil {
		if len(names) == 0 {
			vf.fail("hostname", "wrong_name", fmt.Sprintf("wrong name: the certificate names no host (no subject alternative name), so it cannot be for %s", vf.name))
			return
		}
		vf.fail("hostname", "wrong_name", fmt.Sprintf("wrong name: the certificate is for %s, not for %s; a client that asks for %s refuses it. The server sent the wrong certificate for this name (check its name-based routing), or the certificate lacks the name", strings.Join(names, ", "), vf.name, vf.name))
		return
	}
	matched := vf.name
	for _, n := range names {
		if parent, ok := hostname.Parent(vf.name); n == vf.name || ok && n == hostname.Wildcard(parent) {
			matched = n
			break
		}
	}
	vf.step("hostname", true, fmt.Sprintf("%s matches the certificate's name %s", vf.name, matched))
}

// validityStep checks every certificate of path (or, without one, of the
// chain as sent) against now.
func (vf *verifier) validityStep(path []*x509.Certificate) {
	certs := path
	if certs == nil {
		certs = vf.chain
	}
	for _, c := range certs {
		switch {
		case vf.now.After(c.NotAfter):
			vf.fail("validity", "expired", fmt.Sprintf("expired: %s expired on %s, %s ago; clients refuse it from that moment. Renew the certificate", label(c), c.NotAfter.UTC().Format(time.RFC3339), human(vf.now.Sub(c.NotAfter))))
			return
		case vf.now.Before(c.NotBefore):
			vf.fail("validity", "not_yet_valid", fmt.Sprintf("not yet valid: %s is valid from %s, in %s. Check this machine's clock, and the server's", label(c), c.NotBefore.UTC().Format(time.RFC3339), human(c.NotBefore.Sub(vf.now))))
			return
		}
	}
	leaf := vf.chain[0]
	vf.step("validity", true, fmt.Sprintf("every certificate is within its validity window now; the leaf is valid until %s (%s left of %s)",
		leaf.NotAfter.UTC().Format(time.RFC3339), human(leaf.NotAfter.Sub(vf.now)), human(leaf.NotAfter.Sub(leaf.NotBefore))))
}

// human writes a duration in the largest units that matter.
func human(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	}
	return d.Round(time.Second).String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "its own " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// fetchLimit bounds a certificate downloaded from an AIA URL.
const fetchLimit = 64 << 10

// fetchAIA downloads the certificate an AIA URL points at (http:// only, as
// certificate authorities publish them), within the context's deadline and
// at most 5 s and 64 KiB.
func fetchAIA(ctx context.Context, url string) ([]byte, error) {
	if !strings.HasPrefix(url, "http://") {
		return nil, fmt.Errorf("not an http:// URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	c := &http.Client{
		Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("redirected")
		},
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %s", resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, fetchLimit))
}
