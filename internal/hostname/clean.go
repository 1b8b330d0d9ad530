package hostname

import "strings"

// Clean returns the form in which a Host header or a TLS server name is
// looked up among normalised names: without a port, without the brackets of
// an IPv6 literal, without one trailing dot, in lower case. It checks
// nothing, so a name it returns matches a normalised name only if it is that
// name. It allocates only when h holds upper-case letters: the edge calls it
// for every request and handshake.
func Clean(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i:], ']') < 0 {
		h = h[:i]
	}
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	return Fold(h)
}

// Fold returns name in lower case without one trailing dot: the form in
// which a name that holds no port (an ACME identifier, a DNS zone, a CAA
// issuer) is compared with normalised names. Like Clean it checks nothing
// and allocates only for upper-case letters.
func Fold(name string) string {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	return strings.ToLower(name)
}
