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

// txtStrings turns one TXT value into the character-strings of a TXT record:
// chunks of at most 255 bytes, in the escaped form miekg/dns keeps them in.
func txtStrings(value string) []string {
	var out []string
	for {
		n := min(len(value), 255)
		out = append(out, escapeTXT(value[:n]))
		value = value[n:]
		if value == "" {
			return out
		}
	}
}

// txtValue joins the character-strings of a TXT record into one value, as
// ACME and domain verification read it.
func txtValue(ss []string) string {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString(unescapeTXT(s))
	}
	return b.String()
}

func escapeTXT(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			b.WriteByte('\\')
			b.WriteByte('0' + c/100)
			b.WriteByte('0' + c/10%10)
			b.WriteByte('0' + c%10)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n <= 255 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
