// Package dnstxt converts between a TXT record's value, as ACME and domain
// verification read it, and the character-strings miekg/dns keeps: chunks
// of at most 255 bytes, escaped as in a zone file ("\"", "\\", "\DDD").
// The DNS server, the verifier and the RFC 2136 provider share it.
//
// Imports: only the standard library.
package dnstxt

import "strings"

// Strings splits value into the escaped character-strings of a TXT record.
func Strings(value string) []string {
	var out []string
	for {
		n := min(len(value), 255)
		out = append(out, escape(value[:n]))
		value = value[n:]
		if value == "" {
			return out
		}
	}
}

// Value joins the character-strings of a TXT record into one value.
func Value(ss []string) string {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString(unescape(s))
	}
	return b.String()
}

func escape(s string) string {
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

func unescape(s string) string {
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
			if n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0'); n <= 255 {
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
