package dnsserver

import (
	"strings"

	"github.com/miekg/dns"
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

// validName reports whether a canonical name may be stored: letters, digits,
// '-' and '_' in labels of 1 to 63 bytes, at most 253 bytes in all. Names from
// the wire arrive in presentation form, where a '.' or a '/' inside a label is
// escaped with '\'; rejecting every other byte keeps such names, and store
// keys built from them, unambiguous.
func validName(name string) bool {
	if len(name) < 2 || len(name) > 254 || name[len(name)-1] != '.' {
		return false
	}
	label := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.':
			if label == 0 || label > 63 {
				return false
			}
			label = 0
			continue
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		label++
	}
	return true
}

// inZone reports whether the canonical name is zone or below it.
func inZone(name, zone string) bool {
	return name == zone || strings.HasSuffix(name, "."+zone)
}
