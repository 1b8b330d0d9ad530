package accesslog

import (
	"encoding/hex"
	"math/rand/v2"
)

// RequestIDHeader is the header that carries a request's ID, in the form
// net/http keys it (http.CanonicalHeaderKey("X-Request-ID")).
const RequestIDHeader = "X-Request-Id"

// MaxRequestIDLen is the longest request ID kept from a client.
const MaxRequestIDLen = 128

// ValidRequestID reports whether a client's X-Request-ID is kept: 1 to
// MaxRequestIDLen characters among ASCII letters, digits and - _ . : + =.
// That holds UUIDs, ULIDs, hex and base64url IDs and W3C trace IDs, and
// nothing that could break a log line, a header, a shell or a file name
// an upstream might make of it: no space, quote, slash, control
// character, percent sign or byte above 0x7f.
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '+', c == '=':
		default:
			return false
		}
	}
	return true
}

// NewRequestID returns a new request ID: 32 lower-case hex digits (128
// random bits), as nginx's $request_id. The bits come from math/rand/v2's
// global source (the runtime's ChaCha8 generator, seeded from the
// operating system), which costs no system call: an ID must be unique, not
// secret.
func NewRequestID() string {
	var b [16]byte
	var hx [32]byte
	a, c := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i] = byte(a >> (8 * i))
		b[8+i] = byte(c >> (8 * i))
	}
	hex.Encode(hx[:], b[:])
	return string(hx[:])
}
