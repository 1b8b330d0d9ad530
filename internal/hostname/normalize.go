package hostname

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

// Limits of a name in DNS (RFC 1035 §2.3.4), which certificate authorities
// apply to the names they certify.
const (
	MaxLabelLen = 63  // bytes of one label
	MaxLen      = 253 // bytes of a whole name, without a trailing dot
)

// profile converts Unicode names to punycode and checks them the way
// browsers do (UTS #46, non-transitional), but leaves the length and
// character checks to Normalize so its messages can say what is wrong.
var profile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
)

// Normalize returns name in the form Spine stores and routes: lower case,
// ASCII (IDNA names as punycode), without surrounding spaces or a trailing
// dot. It refuses names a certificate authority would refuse, wildcards and
// names with a port, with an error that says what to fix. It allocates
// nothing for a name already in that form.
func Normalize(name string) (string, error) {
	orig := name
	name = strings.TrimSpace(name)
	if name == "" {
		return "", errors.New("hostname is empty")
	}
	name = strings.TrimSuffix(name, ".")
	if IsWildcard(name) || name == "*" {
		return "", fmt.Errorf("hostname %q: wildcards are not accepted here; name each host", orig)
	}
	ascii := strings.ToLower(name)
	if !isASCII(name) || strings.Contains(ascii, "xn--") {
		// Unicode names become punycode; punycode labels must decode.
		var err error
		if ascii, err = profile.ToASCII(ascii); err != nil {
			if isASCII(name) {
				return "", fmt.Errorf("hostname %q holds a label that is not valid punycode: %v", orig, err)
			}
			return "", fmt.Errorf("hostname %q is not a valid internationalised name: %v", orig, err)
		}
		ascii = strings.ToLower(ascii)
	}
	if len(ascii) > MaxLen {
		return "", fmt.Errorf("hostname %q is %d characters long; the limit is %d", orig, len(ascii), MaxLen)
	}
	for rest, more := ascii, true; more; {
		var label string
		label, rest, more = strings.Cut(rest, ".")
		if err := checkLabel(orig, label); err != nil {
			return "", err
		}
	}
	return ascii, nil
}

// Check reports whether name is a hostname in normal form, the form
// Normalize returns. It allocates nothing for a name that is.
func Check(name string) error {
	n, err := Normalize(name)
	if err != nil {
		return err
	}
	if n != name {
		return fmt.Errorf("hostname %q is not in normal form; write it %q", name, n)
	}
	return nil
}

// ValidLabel reports whether label is one label of a normalised hostname:
// 1 to 63 lower-case letters, digits and hyphens, not starting or ending
// with a hyphen.
func ValidLabel(label string) bool {
	return checkLabel(label, label) == nil
}

// checkLabel checks one label of the name orig, already in lower case.
func checkLabel(orig, label string) error {
	switch {
	case label == "":
		return fmt.Errorf("hostname %q has an empty label (two dots in a row, or a leading dot)", orig)
	case len(label) > MaxLabelLen:
		return fmt.Errorf("hostname %q: label %q is %d characters long; the limit is %d", orig, label, len(label), MaxLabelLen)
	case label[0] == '-' || label[len(label)-1] == '-':
		return fmt.Errorf("hostname %q: label %q may not start or end with a hyphen", orig, label)
	}
	for i := 0; i < len(label); i++ {
		if c := label[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("hostname %q: character %q is not allowed (use letters, digits and hyphens)", orig, c)
		}
	}
	return nil
}

// IsDNSName reports whether name is a DNS owner name in Spine's canonical
// form, without its final dot: lower-case letters, digits, '-' and '_' in
// labels of 1 to 63 bytes, at most 253 bytes in all. It is looser than a
// hostname, because DNS names such as _acme-challenge.example.com hold
// underscores, and it places no rule on hyphens.
func IsDNSName(name string) bool {
	if name == "" || len(name) > MaxLen {
		return false
	}
	label := 0
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		if label++; label > MaxLabelLen {
			return false
		}
	}
	return label > 0
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
