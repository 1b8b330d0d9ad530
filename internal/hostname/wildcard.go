package hostname

import "strings"

// A wildcard name is "*." followed by a domain; it covers the names one
// label under that domain ("*.example.com" covers a.example.com, not
// example.com or a.b.example.com), as in certificates (RFC 6125 §6.4.3)
// and ACME orders.

// IsWildcard reports whether name is a wildcard name.
func IsWildcard(name string) bool { return strings.HasPrefix(name, "*.") }

// Wildcard returns the wildcard name that covers the names one label under
// domain.
func Wildcard(domain string) string { return "*." + domain }

// TrimWildcard returns name without a leading "*.": for a wildcard name, the
// domain whose names it covers; any other name unchanged.
func TrimWildcard(name string) string { return strings.TrimPrefix(name, "*.") }

// Parent returns the domain one label above name ("example.com" for
// "a.example.com"), and false for a name of one label.
func Parent(name string) (string, bool) {
	if i := strings.IndexByte(name, '.'); i > 0 && i < len(name)-1 {
		return name[i+1:], true
	}
	return "", false
}

// InDomain reports whether name is domain itself or a name below it. Both
// must be in the same form (normalised, or both fully qualified).
func InDomain(name, domain string) bool {
	if len(name) == len(domain) {
		return name == domain
	}
	return len(name) > len(domain) && name[len(name)-len(domain)-1] == '.' && strings.HasSuffix(name, domain)
}
