package platform

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/store"
)

// Store is what the platform needs from the database. *store.DB implements it.
type Store interface {
	CreateProject(ctx context.Context, p store.Project) error
	GetProject(ctx context.Context, id string) (store.Project, error)
	ListProjects(ctx context.Context) ([]store.Project, error)
	SuspendProject(ctx context.Context, id string, at time.Time) error
	DeleteProject(ctx context.Context, id string) error

	CreateToken(ctx context.Context, t store.Token) error
	TokenByHash(ctx context.Context, hash string) (store.Credential, error)
	ListTokens(ctx context.Context, projectID string) ([]store.Token, error)
	DeleteToken(ctx context.Context, projectID, name string) error
	TouchTokens(ctx context.Context, uses []store.TokenUse, minStep time.Duration) error

	AppendAudit(ctx context.Context, e store.AuditEntry) error
	ListAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error)
	PruneAudit(ctx context.Context, before time.Time, keep int) (int64, error)

	CreateDomain(ctx context.Context, d store.Domain) error
	GetDomain(ctx context.Context, name string) (store.Domain, error)
	ListDomains(ctx context.Context, projectID string) ([]store.Domain, error)
	DomainsNamed(ctx context.Context, names []string) ([]store.Domain, error)
	UpdateDomain(ctx context.Context, d store.Domain) error
	DeleteDomain(ctx context.Context, projectID, name string) error

	CreateService(ctx context.Context, s store.Service) error
	GetService(ctx context.Context, projectID, name string) (store.Service, error)
	ListServices(ctx context.Context, projectID string) ([]store.Service, error)
	UpdateService(ctx context.Context, projectID, name string, change func(*store.Service) error) (store.Service, error)
	DeleteService(ctx context.Context, projectID, name string) error

	GetCertStatus(ctx context.Context, hostname string) (store.CertStatus, error)

	// hostnames.go: a project's hostnames counted and paged in the store
	HostnameZones(ctx context.Context, projectID string) ([]string, error)
	CountHostnames(ctx context.Context, projectID string, endsBefore time.Time, unserved []string) ([]store.HostnameCount, error)
	ListHostnames(ctx context.Context, q store.HostnameQuery) ([]store.HostnameRow, int, error)
	ListServiceSummaries(ctx context.Context, q store.ServiceQuery) ([]store.ServiceSummary, int, error)

	// uploaded.go
	PutUploadedCert(ctx context.Context, domain string, c store.UploadedCert) error
	ListUploadedCerts(ctx context.Context, projectID string, withKeys bool) ([]store.UploadedCert, error)
	DeleteUploadedCert(ctx context.Context, projectID, hostname string) error

	// events.go
	AppendEvent(ctx context.Context, e store.Event) (store.Event, bool, error)
	ListEvents(ctx context.Context, projectID string, after int64, limit int) ([]store.Event, error)
	LastEventID(ctx context.Context, projectID string) (int64, error)

	// webhooks.go
	CreateWebhook(ctx context.Context, w store.Webhook, max int) error
	GetWebhook(ctx context.Context, projectID, id string) (store.Webhook, error)
	ListWebhooks(ctx context.Context, projectID string) ([]store.Webhook, error)
	DeleteWebhook(ctx context.Context, projectID, id string) error
	EnableWebhook(ctx context.Context, projectID, id string) error
	ListDeliveries(ctx context.Context, projectID, webhookID string, limit int) ([]store.Delivery, error)
	GetDelivery(ctx context.Context, projectID, id string) (store.Delivery, error)
	Redeliver(ctx context.Context, projectID, id string, now time.Time) (store.Delivery, error)

	// quotas.go
	SetQuotaOverride(ctx context.Context, projectID string, o store.QuotaOverride) error
	GetQuotaOverride(ctx context.Context, projectID string) (store.QuotaOverride, error)
	ProjectQuota(ctx context.Context, projectID string, now time.Time) (store.Quota, store.QuotaUsage, error)
}

// DefaultHSTSMaxAge is the Strict-Transport-Security max-age a new service
// gets unless it asks otherwise: one year.
const DefaultHSTSMaxAge = 365 * 24 * 60 * 60

// Platform applies Spine's rules on top of a Store.
type Platform struct {
	store Store
	now   func() time.Time
	opts  Options
	log   *slog.Logger
	usage usageBook // when tokens were last used (usage.go)

	// ownAddrs are Spine's own listener addresses (host:port); an upstream
	// pointing at one of them would make a proxy loop.
	ownAddrs map[string]bool
	// interfaceAddrs lists this machine's addresses (net.InterfaceAddrs).
	interfaceAddrs func() ([]net.Addr, error)

	ownership        Ownership                                                       // see Options.Ownership
	delegation       func(projectID, domain string) string                           // see Options.Delegation
	checkDelegations func(context.Context, []store.Domain) (changed bool, err error) // see Options.CheckDelegations
	checkMu          sync.Mutex                                                      // one round of CheckDomains at a time

	allowPrivateWebhooks bool // see Options.AllowPrivateWebhooks
}

// Options configure a Platform.
type Options struct {
	// OwnAddrs are Spine's own listening addresses ("127.0.0.1:8443"); upstreams
	// that point at them are refused. Default: none.
	OwnAddrs []string
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
	// Ownership looks up domain ownership records (verify.go). Default:
	// none; VerifyDomain answers that verification is not configured.
	Ownership Ownership
	// Delegation returns the name a domain's _acme-challenge CNAME must
	// point to for delegated DNS-01, or "". Default: no delegation.
	Delegation func(projectID, domain string) string
	// CheckDelegations looks up the delegation CNAMEs of verified domains
	// and records which point at their target (CheckDomains); it reports
	// whether anything changed. Default: none.
	CheckDelegations func(ctx context.Context, verified []store.Domain) (changed bool, err error)
	// AllowPrivateWebhooks accepts webhook URLs whose host is a loopback,
	// private or link-local address (spine up, for local development).
	// Default: refused; names are checked again at connect time.
	AllowPrivateWebhooks bool
	// UploadRoots are the roots an uploaded certificate's chain must build
	// to when the upload gives none. Default: the system's public roots.
	UploadRoots *x509.CertPool
	// Audit bounds the audit trail (AuditSettings). Default: 90 days and
	// 10,000 entries a project.
	Audit AuditSettings
	// AuditPruneInterval is how often Maintain prunes the audit trail.
	// Default 10 minutes.
	AuditPruneInterval time.Duration
	// UsageFlushInterval is how often Maintain writes when tokens were
	// last used. Default 10 seconds.
	UsageFlushInterval time.Duration
	// Logger receives the platform's background messages. Default slog.Default().
	Logger *slog.Logger
}

// New returns a Platform over st.
func New(st Store, opts Options) *Platform {
	opts.Audit = opts.Audit.withDefaults()
	if opts.AuditPruneInterval <= 0 {
		opts.AuditPruneInterval = 10 * time.Minute
	}
	if opts.UsageFlushInterval <= 0 {
		opts.UsageFlushInterval = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Platform{store: st, now: opts.Now, opts: opts, log: opts.Logger, ownAddrs: map[string]bool{}, ownership: opts.Ownership, delegation: opts.Delegation,
		checkDelegations: opts.CheckDelegations, interfaceAddrs: net.InterfaceAddrs, allowPrivateWebhooks: opts.AllowPrivateWebhooks}
	if p.now == nil {
		p.now = time.Now
	}
	for _, a := range opts.OwnAddrs {
		if _, port, err := net.SplitHostPort(a); err == nil {
			if n, err := hostname.ParsePort(port); err == nil {
				p.ownAddrs[ownAddr(hostname.Clean(a), n)] = true
			}
		}
	}
	return p
}

// newID returns a random identifier with a readable prefix ("svc_3f9a...").
func newID(prefix string) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return prefix + hex.EncodeToString(b[:])
}

// checkName checks a short identifier: one hostname label (a-z, 0-9, inner
// hyphens, 1 to 63 characters), so that it can head a hostname.
func checkName(what, name string) error {
	if name == "" {
		return invalid("invalid_name", what+" is empty")
	}
	if len(name) > hostname.MaxLabelLen {
		return invalid("invalid_name", fmt.Sprintf("%s %q is %d characters long; the limit is %d", what, name, len(name), hostname.MaxLabelLen))
	}
	if !hostname.ValidLabel(name) {
		return invalid("invalid_name", fmt.Sprintf("%s %q: use lower-case letters, digits and inner hyphens only", what, name))
	}
	return nil
}

// sortedUnique returns the names sorted with duplicates removed.
func sortedUnique(names []string) []string {
	sort.Strings(names)
	out := names[:0]
	for i, n := range names {
		if i == 0 || n != names[i-1] {
			out = append(out, n)
		}
	}
	return out
}

// checkUpstream parses and checks an upstream URL.
func (p *Platform) checkUpstream(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return "", invalid("invalid_upstream", fmt.Sprintf("upstream %q is not an absolute URL; write it like http://127.0.0.1:9000", redactUpstream(raw)))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", invalid("invalid_upstream", fmt.Sprintf("upstream %q: scheme %q is not supported; use http:// or https://", redactUpstream(raw), u.Scheme))
	}
	if u.User != nil {
		return "", invalid("invalid_upstream", fmt.Sprintf("upstream %q: credentials in the URL are not supported", u.Redacted()))
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", invalid("invalid_upstream", fmt.Sprintf("upstream %q: a query or fragment is not allowed", redactUpstream(raw)))
	}
	if err := checkUpstreamHostPort(raw, u); err != nil {
		return "", err
	}
	if port := u.Port(); port != "" {
		// The canonical form holds the port as the number it is ("08443"
		// is 8443), as the edge and the proxy-loop checks read it.
		n, _ := hostname.ParsePort(port) // checked by checkUpstreamHostPort
		u.Host = u.Host[:len(u.Host)-len(port)] + strconv.Itoa(n)
	}
	if p.isOwnAddr(u) {
		return "", invalid("proxy_loop", fmt.Sprintf("upstream %q points at Spine's own listener; that would make a proxy loop", redactUpstream(raw)))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	// Every trailing slash goes, so that the canonical form is stable
	// (".../" and ".../a//" once left a slash that a second pass removed).
	return strings.TrimRight(u.String(), "/"), nil
}

// isOwnAddr reports whether u points at one of Spine's own listeners. A
// listener on an unspecified address (":443", "0.0.0.0:443", "[::]:443") is
// reached through any loopback name and through any of this machine's own
// interface addresses.
func (p *Platform) isOwnAddr(u *url.URL) bool {
	port := upstreamPort(u)
	host := hostname.Clean(u.Host)
	if p.ownAddrs[ownAddr(host, port)] {
		return true
	}
	via := []string{"", "0.0.0.0", "::"} // listeners that any local address reaches
	ip := net.ParseIP(host)
	switch {
	case hostname.InDomain(host, "localhost") || ip != nil && (ip.IsLoopback() || ip.IsUnspecified()):
		via = append(via, "localhost", "127.0.0.1", "::1")
	case ip != nil && p.localIP(ip):
	default:
		return false
	}
	for _, h := range via {
		if p.ownAddrs[ownAddr(h, port)] {
			return true
		}
	}
	return false
}

// ownAddr is the key of Platform.ownAddrs: a cleaned host and the port as a
// number, so that "LOCALHOST.:08443" is the listener "localhost:8443".
func ownAddr(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// localIP reports whether ip is an address of one of this machine's network
// interfaces. It asks the kernel each time: interfaces come and go, and
// upstreams are checked only when a service is written.
func (p *Platform) localIP(ip net.IP) bool {
	list := p.interfaceAddrs
	if list == nil { // a Platform built without New, as in tests
		list = net.InterfaceAddrs
	}
	addrs, err := list()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
