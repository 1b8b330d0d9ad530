package platform

import (
	"github.com/spine-platform/spine/internal/hostname"
)

// NormalizeHostname is hostname.Normalize with its refusal as an Invalid
// Error (code invalid_hostname), which the API answers with 400.
func NormalizeHostname(name string) (string, error) {
	n, err := hostname.Normalize(name)
	if err != nil {
		return "", invalid("invalid_hostname", err.Error())
	}
	return n, nil
}
