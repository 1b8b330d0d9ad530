package inspect

import "time"

// Report is everything one inspection found. Its JSON encoding is the output
// of `spine inspect --output json`: fields are only ever added to it, never
// renamed or given another meaning. A section is absent (null) when its
// step was not reached: no handshake after a failed connect, no HTTP
// answer after a failed verification. Times are RFC 3339, durations
// milliseconds.
type Report struct {
	Target       Target        `json:"target"`
	DNS          DNS           `json:"dns"`
	TCP          *TCP          `json:"tcp"`
	Handshake    *Handshake    `json:"handshake"`
	Legacy       *Handshake    `json:"legacy_handshake"` // only when the server refused TLS 1.2 and 1.3: what it speaks instead
	Chain        []Certificate `json:"chain"`            // as the server sent it
	Verification *Verification `json:"verification"`
	KeyExchange  *KeyExchange  `json:"key_exchange"`
	Resumption   *Resumption   `json:"resumption"`
	HTTP         *HTTP         `json:"http"`
	Spine        *SpineView    `json:"spine"`
	Timing       Timing        `json:"timing_ms"`
	Result       Result        `json:"result"`
}

// Target is what was inspected.
type Target struct {
	Input      string `json:"input"`
	Host       string `json:"host"`
	Port       int    `json:"port"`
	ServerName string `json:"server_name"` // sent as SNI and checked against the certificate ("" for an IP address)
	Path       string `json:"path"`        // of the HTTP request
}

// DNS is how the host became addresses.
type DNS struct {
	// Source: "literal" (an IP address), "localhost" (names under
	// localhost are loopback, RFC 6761), "hosts" (/etc/hosts) or "dns".
	Source   string      `json:"source"`
	Resolver string      `json:"resolver,omitempty"` // the DNS server asked
	Answers  []DNSAnswer `json:"answers,omitempty"`  // A, AAAA, CNAME and HTTPS records, as received
	// HTTPS holds the HTTPS (service binding) records of the name, in zone-file form.
	HTTPS       []string `json:"https,omitempty"`
	Addresses   []string `json:"addresses"`
	Explanation string   `json:"explanation"`
	Error       string   `json:"error,omitempty"`
}

// DNSAnswer is one record of an answer.
type DNSAnswer struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
	TTL   uint32 `json:"ttl"`
}

// TCP is the connection the handshake ran on.
type TCP struct {
	Attempts []TCPAttempt `json:"attempts"`
	Remote   string       `json:"remote,omitempty"` // the address that answered
	Local    string       `json:"local,omitempty"`
}

// TCPAttempt is one connect, in the order of the DNS answers.
type TCPAttempt struct {
	Address string  `json:"address"`
	Ms      float64 `json:"ms"`
	Error   string  `json:"error,omitempty"`
}

// Handshake is one TLS handshake as it went over the wire.
type Handshake struct {
	ClientHello *ClientHello `json:"client_hello"`
	// HelloRetryRequest is set when the server asked for another key
	// share (a ServerHello with the special Random of RFC 8446, 4.1.3).
	HelloRetryRequest *HelloRetry  `json:"hello_retry_request"`
	SecondClientHello *ClientHello `json:"second_client_hello"`
	ServerHello       *ServerHello `json:"server_hello"`
	Alert             string       `json:"alert,omitempty"` // an alert the server sent in clear
	ECH               ECH          `json:"ech"`
	ServerHelloMs     float64      `json:"server_hello_ms"` // from the ClientHello leaving to the first byte of the answer
	Error             string       `json:"error,omitempty"`
	Explanation       string       `json:"explanation,omitempty"`
	CaptureIncomplete bool         `json:"capture_incomplete,omitempty"` // more than 128 KiB went one way
}

// ClientHello is what this client offered, read from the bytes it sent.
type ClientHello struct {
	Bytes            int      `json:"bytes"`
	SNI              string   `json:"sni"`
	Versions         []string `json:"versions"`
	Groups           []string `json:"groups"`
	KeyShares        []string `json:"key_shares"`
	CipherSuites     []string `json:"cipher_suites"`
	SignatureSchemes []string `json:"signature_schemes"`
	ALPN             []string `json:"alpn"`
	ECH              bool     `json:"ech"`               // an encrypted_client_hello extension was sent
	ResumptionOffers int      `json:"resumption_offers"` // tickets offered (TLS 1.3 pre_shared_key identities, or a TLS 1.2 ticket)
	Extensions       []string `json:"extensions"`
}

// HelloRetry is a HelloRetryRequest.
type HelloRetry struct {
	Group       string `json:"group"` // the group the server asked for
	Explanation string `json:"explanation"`
}

// ServerHello is what the server chose, read from the bytes it sent.
type ServerHello struct {
	Version              string   `json:"version"`
	CipherSuite          string   `json:"cipher_suite"`
	Group                string   `json:"group"` // of the key exchange (TLS 1.3 key_share, TLS 1.2 ServerKeyExchange)
	ALPN                 string   `json:"alpn"`
	PreSharedKey         bool     `json:"pre_shared_key"`         // TLS 1.3: the server accepted a ticket
	ExtendedMasterSecret bool     `json:"extended_master_secret"` // TLS 1.2
	DowngradeSentinel    string   `json:"downgrade_sentinel,omitempty"`
	Extensions           []string `json:"extensions"`
}

// ECH is what happened to Encrypted Client Hello.
type ECH struct {
	// ConfigSource: "" (no configuration: ECH not offered), "dns" (the
	// name's HTTPS record) or "retry" (the configuration a server sent
	// when it rejected the first one).
	ConfigSource string `json:"config_source,omitempty"`
	Offered      bool   `json:"offered"`  // the ClientHello on the wire had the extension
	Accepted     bool   `json:"accepted"` // the server decrypted the inner ClientHello
	OuterSNI     string `json:"outer_sni,omitempty"`
	Explanation  string `json:"explanation"`
}

// Certificate is one certificate the server sent.
type Certificate struct {
	Index              int       `json:"index"`
	Subject            string    `json:"subject"`
	Names              []string  `json:"names"`
	Issuer             string    `json:"issuer"`
	Serial             string    `json:"serial"`
	Key                string    `json:"key"` // "ECDSA P-256", "RSA 2048", "Ed25519"
	SignatureAlgorithm string    `json:"signature_algorithm"`
	NotBefore          time.Time `json:"not_before"`
	NotAfter           time.Time `json:"not_after"`
	CA                 bool      `json:"ca"`
	SelfSigned         bool      `json:"self_signed"`
	SHA256             string    `json:"sha256"`
}

// Verification is the check of the chain, step by step.
type Verification struct {
	OK         bool     `json:"ok"`
	Steps      []Step   `json:"steps"`
	Path       []string `json:"path,omitempty"` // subjects from the leaf to the root, when one was found
	Root       string   `json:"root,omitempty"`
	RootSource string   `json:"root_source,omitempty"` // where the root is trusted from
	Failure    *Failure `json:"failure"`
}

// Step is one check.
type Step struct {
	Step   string `json:"step"` // signature, root, hostname, validity
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Failure is why the connection is not trustworthy, in plain words.
type Failure struct {
	Step string `json:"step"`
	// Reason is one of: expired, not_yet_valid, wrong_name, self_signed,
	// unknown_issuer, missing_intermediate, bad_signature,
	// not_for_server_auth, not_a_ca, insecure_algorithm, name_constraints,
	// no_certificate, invalid.
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// KeyExchange is how the session keys came about.
type KeyExchange struct {
	Group         string `json:"group"`
	Ephemeral     bool   `json:"ephemeral"`
	ForwardSecret bool   `json:"forward_secret"`
	PostQuantum   bool   `json:"post_quantum"`
	SessionKeys   string `json:"session_keys"` // the record protection, e.g. "AES-128-GCM"
	Explanation   string `json:"explanation"`
}

// Resumption is the session ticket and the second connection that used it.
type Resumption struct {
	Tickets         int       `json:"tickets"` // received on the first connection
	TicketBytes     int       `json:"ticket_bytes"`
	LifetimeSeconds int64     `json:"lifetime_seconds"` // as the server set it (TLS 1.3 ticket_lifetime, TLS 1.2 lifetime hint; 0: not given)
	ReceivedAt      time.Time `json:"received_at"`
	Attempted       bool      `json:"attempted"`
	Resumed         bool      `json:"resumed"`        // ConnectionState.DidResume of the second connection
	PreSharedKey    bool      `json:"pre_shared_key"` // its ServerHello accepted the ticket (TLS 1.3, from the wire)
	KeyShare        bool      `json:"key_share"`      // and still ran a fresh key exchange (psk_dhe_ke: forward secret)
	HandshakeMs     float64   `json:"handshake_ms"`
	Explanation     string    `json:"explanation"`
	Error           string    `json:"error,omitempty"`
}

// HTTP is the answer to one GET request on the inspected connection.
type HTTP struct {
	Protocol   string `json:"protocol"` // "h2" or "http/1.1"
	Status     int    `json:"status"`
	StatusText string `json:"status_text"`
	Server     string `json:"server,omitempty"`
	HSTS       string `json:"hsts"` // the Strict-Transport-Security header, "" if none
	HSTSWhat   string `json:"hsts_explanation"`
	AltSvc     string `json:"alt_svc"` // the Alt-Svc header, "" if none
	// H3 is HTTP/3 as Alt-Svc advertises it.
	H3    H3     `json:"h3"`
	Error string `json:"error,omitempty"`
}

// H3 is what the Alt-Svc header says of HTTP/3, and what an HTTP/3
// request to the advertised endpoint got.
type H3 struct {
	Advertised    bool   `json:"advertised"`
	Authority     string `json:"authority,omitempty"` // ":443", "host:port"
	MaxAgeSeconds int64  `json:"max_age_seconds,omitempty"`
	// Tried is true once an HTTP/3 connection was attempted to the
	// advertised endpoint (Address, over UDP).
	Tried       bool     `json:"tried"`
	Address     string   `json:"address,omitempty"`
	Works       bool     `json:"works"`            // the certificate verified and a GET was answered over h3
	Status      int      `json:"status,omitempty"` // of that GET
	HandshakeMs *float64 `json:"handshake_ms,omitempty"`
	RequestMs   *float64 `json:"request_ms,omitempty"`
	Error       string   `json:"error,omitempty"`
	Explanation string   `json:"explanation"`
}

// SpineView is what Spine's API says of the certificate of the name.
type SpineView struct {
	Hostname    string     `json:"hostname"`
	Service     string     `json:"service,omitempty"`
	Status      string     `json:"status,omitempty"` // pending, issuing, active, failed
	Issuer      string     `json:"issuer,omitempty"`
	NotBefore   *time.Time `json:"not_before,omitempty"`
	NotAfter    *time.Time `json:"not_after,omitempty"`
	RenewAfter  *time.Time `json:"renew_after,omitempty"`
	Error       string     `json:"error,omitempty"`
	Served      *bool      `json:"served_matches,omitempty"` // the certificate served is the one Spine records (same expiry)
	Explanation string     `json:"explanation"`
}

// Timing is how long each phase took; a phase that did not run is absent.
type Timing struct {
	DNS         *float64 `json:"dns,omitempty"`
	TCP         *float64 `json:"tcp,omitempty"`
	ServerHello *float64 `json:"server_hello,omitempty"` // from the ClientHello leaving to the first byte of the answer
	Handshake   *float64 `json:"tls_handshake,omitempty"`
	Verify      *float64 `json:"verify,omitempty"`
	HTTP        *float64 `json:"http,omitempty"`
	Resumption  *float64 `json:"resumption,omitempty"` // connect and handshake of the second connection
	Total       float64  `json:"total"`
}

// Result sums the inspection up.
type Result struct {
	OK       bool `json:"ok"`
	ExitCode int  `json:"exit_code"`
	// Step is where it stopped: dns, tcp, tls, verify, http ("" when OK).
	Step    string `json:"step,omitempty"`
	Reason  string `json:"reason,omitempty"` // Failure.Reason, or dns_failed, connect_failed, handshake_failed, insecure_version, http_failed
	Message string `json:"message"`
}

// Exit statuses of `spine inspect` (Result.ExitCode); 1 is left to
// command-line errors (a bad URL, a missing --ca file).
const (
	ExitOK         = 0
	ExitConnect    = 2 // no TLS session: DNS, TCP or the handshake failed, or no HTTP answer
	ExitNotTrusted = 3 // a session, but a browser would refuse it: the certificate failed verification, or the server speaks only TLS 1.0 or 1.1
)

func ms(d time.Duration) *float64 {
	v := float64(d.Microseconds()) / 1000
	return &v
}
