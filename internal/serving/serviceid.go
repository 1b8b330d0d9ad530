package serving

import (
	"encoding/hex"
	"strings"
	"unsafe"
)

// rawID is a service ID of the form platform makes ("svc_" and 24
// lowercase hex digits, 28 bytes) in the 12 bytes the digits encode: a
// record keeps it inline, where the ID string was a 16-byte header and
// 28 bytes of a read's block that the record alone kept alive (about 44
// bytes a service at a million). Any other ID (a test's, a store's
// written by hand) stays a string in the record's serviceMore.
type rawID [12]byte

const (
	idPrefix = "svc_"
	idLen    = len(idPrefix) + 2*len(rawID{})
)

// packID returns id's bytes, or false when id is not of platform's form
// (upper-case digits included: their text would not give id back).
func packID(id string) (rawID, bool) {
	var r rawID
	if len(id) != idLen || !strings.HasPrefix(id, idPrefix) {
		return r, false
	}
	if _, err := hex.Decode(r[:], []byte(id[len(idPrefix):])); err != nil {
		return r, false
	}
	var buf [idLen]byte
	return r, r.text(&buf) == id
}

// text writes r's ID into buf and returns it as a string of buf's bytes
// (no allocation: valid while buf is).
func (r *rawID) text(buf *[idLen]byte) string {
	copy(buf[:], idPrefix)
	hex.Encode(buf[len(idPrefix):], r[:])
	return unsafe.String(&buf[0], idLen)
}

// String returns r's ID, a new string.
func (r *rawID) String() string {
	var buf [idLen]byte
	return strings.Clone(r.text(&buf))
}
