package dnsserver

import (
	"github.com/miekg/dns"

	"github.com/spine-platform/spine/internal/hostname"
)

// Limits on what a RecordStore holds, so neither an UPDATE nor a bug can grow
// an answer past what UDP and TCP messages carry.
const (
	maxTXTLen     = 1024 // bytes of one TXT value (ACME digests are 43)
	maxTXTPerName = 32   // values at one name
)

// canonicalName lowercases name and makes it fully qualified.
func canonicalName(name string) string {
	return dns.CanonicalName(name)
}

// validName reports whether a canonical name may be stored: a DNS name
// (hostname.IsDNSName: letters, digits, '-' and '_' in labels of 1 to 63
// bytes, at most 253 bytes) with its final dot. Names from the wire arrive
// in presentation form, where a '.' or a '/' inside a label is escaped with
// '\'; rejecting every other byte keeps such names, and store keys built
// from them, unambiguous.
func validName(name string) bool {
	return len(name) >= 2 && name[len(name)-1] == '.' && hostname.IsDNSName(name[:len(name)-1])
}

// inZone reports whether the canonical name is zone or below it.
func inZone(name, zone string) bool {
	return hostname.InDomain(name, zone)
}
