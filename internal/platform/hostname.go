package platform

import (
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

// hostnameProfile converts Unicode names to punycode and checks them the way
// browsers do (UTS #46, non-transitional), but leaves the length and
// character checks to NormalizeHostname so its messages can say what is wrong.
var hostnameProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
)

// NormalizeHostname returns name in the form Spine stores and routes:
// lower case, ASCII (IDNA names as punycode), without a trailing dot or port.
// It refuses names a certificate authority would refuse, with a message that
// says what to fix.
func NormalizeHostname(name string) (string, error) {
	orig := name
	name = strings.TrimSpace(name)
	if name == "" {
		return "", invalid("invalid_hostname", "hostname is empty")
	}
	name = strings.TrimSuffix(name, ".")
	if strings.HasPrefix(name, "*.") || name == "*" {
		return "", invalid("invalid_hostname", fmt.Sprintf("hostname %q: wildcards are not accepted here; name each host", orig))
	}
	ascii := strings.ToLower(name)
	if !isASCII(name) || strings.Contains(ascii, "xn--") {
		// Unicode names become punycode; punycode labels must decode.
		var err error
		if ascii, err = hostnameProfile.ToASCII(ascii); err != nil {
			if isASCII(name) {
				return "", invalid("invalid_hostname", fmt.Sprintf("hostname %q holds a label that is not valid punycode: %v", orig, err))
			}
			return "", invalid("invalid_hostname", fmt.Sprintf("hostname %q is not a valid internationalised name: %v", orig, err))
		}
		ascii = strings.ToLower(ascii)
	}
	if len(ascii) > 253 {
		return "", invalid("invalid_hostname", fmt.Sprintf("hostname %q is %d characters long; the limit is 253", orig, len(ascii)))
	}
	for _, label := range strings.Split(ascii, ".") {
		if err := checkLabel(orig, label); err != nil {
			return "", err
		}
	}
	return ascii, nil
}

func checkLabel(orig, label string) error {
	switch {
	case label == "":
		return invalid("invalid_hostname", fmt.Sprintf("hostname %q has an empty label (two dots in a row, or a leading dot)", orig))
	case len(label) > 63:
		return invalid("invalid_hostname", fmt.Sprintf("hostname %q: label %q is %d characters long; the limit is 63", orig, label, len(label)))
	case label[0] == '-' || label[len(label)-1] == '-':
		return invalid("invalid_hostname", fmt.Sprintf("hostname %q: label %q may not start or end with a hyphen", orig, label))
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return invalid("invalid_hostname", fmt.Sprintf("hostname %q: character %q is not allowed (use letters, digits and hyphens)", orig, c))
		}
	}
	return nil
}

// isUnder reports whether host is domain itself or a name below it.
func isUnder(host, domain string) bool {
	return host == domain || strings.HasSuffix(host, "."+domain)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
