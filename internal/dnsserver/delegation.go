package dnsserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"

	"github.com/spine-platform/spine/internal/hostname"
)

var labelEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// DelegationLabel returns the label under Spine's zone at which a project's
// DNS-01 challenges for domain are answered: 32 characters of base32 (a-z,
// 2-7) from an HMAC-SHA256, keyed with secret, of the project and the domain.
// It is stable for the same inputs, so the customer's CNAME works forever,
// and cannot be guessed without the secret, so no one can point their own
// domain at another project's label. A leading "*." and a final dot of
// domain and its letter case do not change the label.
func DelegationLabel(secret []byte, projectID, domain string) string {
	domain = hostname.Fold(hostname.TrimWildcard(domain))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("spine-dns01-delegation\x00"))
	mac.Write([]byte(projectID))
	mac.Write([]byte{0})
	mac.Write([]byte(domain))
	return labelEncoding.EncodeToString(mac.Sum(nil)[:20])
}

// CNAMETarget returns the fully qualified name the customer's
// _acme-challenge CNAME must point to: label.zone., in lowercase.
func CNAMETarget(label, zone string) string {
	return canonicalName(label + "." + strings.TrimSuffix(zone, "."))
}
