package inspect

import (
	"bytes"
	"errors"

	"golang.org/x/crypto/cryptobyte"
)

// The TLS records and handshake messages read off the wire. crypto/tls
// parses the same messages but exports none of its parsers, and the report
// must show what the bytes said, not what this client was configured to
// send; FuzzClientHello checks this parser against crypto/tls's server on
// every input that server accepts.

// Record content types and handshake message types (RFC 8446, 5.1 and 4).
const (
	recordChangeCipherSpec = 20
	recordAlert            = 21
	recordHandshake        = 22
	recordApplicationData  = 23

	msgClientHello       = 1
	msgServerHello       = 2
	msgNewSessionTicket  = 4
	msgServerKeyExchange = 12
)

// Extension numbers this package reads.
const (
	extServerName          = 0
	extSupportedGroups     = 10
	extSignatureAlgorithms = 13
	extALPN                = 16
	extExtendedMasterSec   = 23
	extSessionTicket       = 35
	extPreSharedKey        = 41
	extSupportedVersions   = 43
	extKeyShare            = 51
	extECH                 = 0xfe0d
)

// helloRetryRandom is the Random of a ServerHello that is a
// HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446, 4.1.3).
var helloRetryRandom = []byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

// Downgrade sentinels a TLS 1.3 server puts at the end of its Random when
// it negotiates TLS 1.2 (…01) or an older version (…00) (RFC 8446, 4.1.3).
var (
	downgradeTLS12 = []byte("DOWNGRD\x01")
	downgradeTLS11 = []byte("DOWNGRD\x00")
)

type record struct {
	typ     uint8
	payload []byte
}

// records splits b into TLS records; a partial record at the end is left out.
func records(b []byte) []record {
	var out []record
	s := cryptobyte.String(b)
	for !s.Empty() {
		var typ uint8
		var version uint16
		var payload cryptobyte.String
		if !s.ReadUint8(&typ) || !s.ReadUint16(&version) || !s.ReadUint16LengthPrefixed(&payload) {
			break
		}
		out = append(out, record{typ: typ, payload: payload})
	}
	return out
}

type handshakeMsg struct {
	typ  uint8
	body []byte
	raw  int // length with its 4-byte header
}

// messages reassembles handshake messages from the handshake bytes of
// consecutive records; a partial message at the end is left out.
func messages(b []byte) []handshakeMsg {
	var out []handshakeMsg
	s := cryptobyte.String(b)
	for !s.Empty() {
		var typ uint8
		var body cryptobyte.String
		if !s.ReadUint8(&typ) || !s.ReadUint24LengthPrefixed(&body) {
			break
		}
		out = append(out, handshakeMsg{typ: typ, body: body, raw: len(body) + 4})
	}
	return out
}

// clientHello is a parsed ClientHello, with the numbers as sent.
type clientHello struct {
	size             int // bytes of the handshake message
	legacyVersion    uint16
	sessionID        []byte
	cipherSuites     []uint16
	serverName       string
	versions         []uint16 // supported_versions; empty: legacyVersion alone
	groups           []uint16
	keyShares        []uint16
	signatureSchemes []uint16
	alpn             []string
	extensions       []uint16
	ech              bool // encrypted_client_hello present (an outer hello)
	pskIdentities    int  // pre_shared_key: tickets offered for resumption (TLS 1.3)
	sessionTicket    int  // session_ticket: bytes of a TLS 1.2 ticket offered (0: none, or an empty ask)
}

var errMalformed = errors.New("malformed")

// parseClientHello parses the body of a ClientHello message (RFC 8446, 4.1.2).
func parseClientHello(body []byte) (*clientHello, error) {
	h := &clientHello{size: len(body) + 4}
	s := cryptobyte.String(body)
	var random, sessionID, suites, compression cryptobyte.String
	if !s.ReadUint16(&h.legacyVersion) || !s.ReadBytes((*[]byte)(&random), 32) ||
		!s.ReadUint8LengthPrefixed(&sessionID) || !s.ReadUint16LengthPrefixed(&suites) ||
		!s.ReadUint8LengthPrefixed(&compression) {
		return nil, errMalformed
	}
	h.sessionID = sessionID
	for !suites.Empty() {
		var cs uint16
		if !suites.ReadUint16(&cs) {
			return nil, errMalformed
		}
		h.cipherSuites = append(h.cipherSuites, cs)
	}
	if s.Empty() {
		return h, nil // no extensions (an SSL 3.0-style hello)
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, errMalformed
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, errMalformed
		}
		h.extensions = append(h.extensions, typ)
		if err := h.extension(typ, data); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (h *clientHello) extension(typ uint16, data cryptobyte.String) error {
	ok := true
	switch typ {
	case extServerName:
		var list cryptobyte.String
		ok = data.ReadUint16LengthPrefixed(&list) && data.Empty()
		for ok && !list.Empty() {
			var nameType uint8
			var name cryptobyte.String
			ok = list.ReadUint8(&nameType) && list.ReadUint16LengthPrefixed(&name)
			if ok && nameType == 0 {
				h.serverName = string(name)
			}
		}
	case extSupportedGroups:
		h.groups, ok = readUint16List(&data)
	case extSignatureAlgorithms:
		h.signatureSchemes, ok = readUint16List(&data)
	case extALPN:
		var list cryptobyte.String
		ok = data.ReadUint16LengthPrefixed(&list) && data.Empty()
		for ok && !list.Empty() {
			var proto cryptobyte.String
			ok = list.ReadUint8LengthPrefixed(&proto) && len(proto) > 0
			h.alpn = append(h.alpn, string(proto))
		}
	case extSupportedVersions:
		var list cryptobyte.String
		ok = data.ReadUint8LengthPrefixed(&list) && data.Empty()
		for ok && !list.Empty() {
			var v uint16
			ok = list.ReadUint16(&v)
			h.versions = append(h.versions, v)
		}
	case extKeyShare:
		var list cryptobyte.String
		ok = data.ReadUint16LengthPrefixed(&list) && data.Empty()
		for ok && !list.Empty() {
			var group uint16
			var key cryptobyte.String
			ok = list.ReadUint16(&group) && list.ReadUint16LengthPrefixed(&key)
			h.keyShares = append(h.keyShares, group)
		}
	case extPreSharedKey:
		var ids cryptobyte.String
		ok = data.ReadUint16LengthPrefixed(&ids)
		for ok && !ids.Empty() {
			var id cryptobyte.String
			var age uint32
			ok = ids.ReadUint16LengthPrefixed(&id) && ids.ReadUint32(&age)
			h.pskIdentities++
		}
	case extSessionTicket:
		h.sessionTicket = len(data)
	case extECH:
		h.ech = true
	}
	if !ok {
		return errMalformed
	}
	return nil
}

// readUint16List reads a list of uint16 with a 16-bit length prefix that
// fills data.
func readUint16List(data *cryptobyte.String) ([]uint16, bool) {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() || len(list)%2 != 0 {
		return nil, false
	}
	var out []uint16
	for !list.Empty() {
		var v uint16
		list.ReadUint16(&v)
		out = append(out, v)
	}
	return out, true
}

// serverHello is a parsed ServerHello or HelloRetryRequest.
type serverHello struct {
	legacyVersion uint16
	version       uint16 // supported_versions, else legacyVersion
	retry         bool   // a HelloRetryRequest
	downgrade     string // "TLS 1.2" or "TLS 1.1": the Random says the server could do more
	cipherSuite   uint16
	group         uint16 // key_share's group (TLS 1.3)
	psk           bool   // pre_shared_key: the server accepted a ticket
	ems           bool   // extended_master_secret (TLS 1.2)
	sessionTicket bool   // session_ticket: a TLS 1.2 ticket will follow
	alpn          string
	extensions    []uint16
}

// parseServerHello parses the body of a ServerHello (RFC 8446, 4.1.3).
func parseServerHello(body []byte) (*serverHello, error) {
	h := &serverHello{}
	s := cryptobyte.String(body)
	var random []byte
	var sessionID cryptobyte.String
	var compression uint8
	if !s.ReadUint16(&h.legacyVersion) || !s.ReadBytes(&random, 32) ||
		!s.ReadUint8LengthPrefixed(&sessionID) || !s.ReadUint16(&h.cipherSuite) || !s.ReadUint8(&compression) {
		return nil, errMalformed
	}
	h.version = h.legacyVersion
	h.retry = bytes.Equal(random, helloRetryRandom)
	switch {
	case bytes.HasSuffix(random, downgradeTLS12):
		h.downgrade = "TLS 1.2"
	case bytes.HasSuffix(random, downgradeTLS11):
		h.downgrade = "TLS 1.1"
	}
	if s.Empty() {
		return h, nil
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, errMalformed
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, errMalformed
		}
		h.extensions = append(h.extensions, typ)
		ok := true
		switch typ {
		case extSupportedVersions:
			ok = data.ReadUint16(&h.version)
		case extKeyShare:
			ok = data.ReadUint16(&h.group) // a ServerHello's key follows; an HRR has none
		case extPreSharedKey:
			h.psk = true
		case extExtendedMasterSec:
			h.ems = true
		case extSessionTicket:
			h.sessionTicket = true
		case extALPN:
			var list, proto cryptobyte.String
			ok = data.ReadUint16LengthPrefixed(&list) && list.ReadUint8LengthPrefixed(&proto)
			h.alpn = string(proto)
		}
		if !ok {
			return nil, errMalformed
		}
	}
	return h, nil
}

// flights is what the two directions of a handshake said in clear.
type flights struct {
	clientHellos []*clientHello // the first, and a second one after a HelloRetryRequest
	serverHellos []*serverHello // a HelloRetryRequest, if any, then the ServerHello
	alert        *alert         // an alert the server sent in clear
	group12      uint16         // TLS 1.2: the curve of the ServerKeyExchange
	ticket12     *ticket12      // TLS 1.2: the NewSessionTicket
}

type alert struct{ level, description uint8 }

type ticket12 struct {
	lifetimeHint uint32
	size         int
}

// readFlights parses the captured bytes of one connection. Only what is in
// clear is read: everything after the ServerHello in TLS 1.3, and after
// ChangeCipherSpec in TLS 1.2, is encrypted.
func readFlights(out, in []byte) flights {
	var f flights
	f.readServer(in)
	f.readClient(out)
	return f
}

func (f *flights) readServer(in []byte) {
	var hs []byte
	done := 0 // bytes of hs already parsed into messages
	tls13 := false
	for _, r := range records(in) {
		switch r.typ {
		case recordAlert:
			if len(r.payload) >= 2 {
				f.alert = &alert{r.payload[0], r.payload[1]}
			}
			return
		case recordChangeCipherSpec:
			if !tls13 {
				return // TLS 1.2: encrypted from here on
			}
			continue // TLS 1.3's middlebox-compatibility record
		case recordHandshake:
			hs = append(hs, r.payload...)
		default:
			return
		}
		for _, m := range messages(hs[done:]) {
			done += m.raw
			switch m.typ {
			case msgServerHello:
				sh, err := parseServerHello(m.body)
				if err != nil {
					return
				}
				f.serverHellos = append(f.serverHellos, sh)
				if sh.version >= 0x0304 && !sh.retry {
					return // the rest is encrypted
				}
				tls13 = sh.retry
			case msgServerKeyExchange:
				s := cryptobyte.String(m.body)
				var curveType uint8
				var group uint16
				if s.ReadUint8(&curveType) && curveType == 3 && s.ReadUint16(&group) {
					f.group12 = group
				}
			case msgNewSessionTicket:
				s := cryptobyte.String(m.body)
				var t ticket12
				var ticket cryptobyte.String
				if s.ReadUint32(&t.lifetimeHint) && s.ReadUint16LengthPrefixed(&ticket) {
					t.size = len(ticket)
					f.ticket12 = &t
				}
			}
		}
	}
}

func (f *flights) readClient(out []byte) {
	want := 1 // ClientHellos to read: one more after a HelloRetryRequest
	if len(f.serverHellos) > 0 && f.serverHellos[0].retry {
		want = 2
	}
	var hs []byte
	done := 0
	for _, r := range records(out) {
		switch r.typ {
		case recordHandshake:
			hs = append(hs, r.payload...)
		case recordChangeCipherSpec:
			continue // before a second ClientHello in TLS 1.3
		default:
			return
		}
		for _, m := range messages(hs[done:]) {
			done += m.raw
			if m.typ != msgClientHello {
				return // TLS 1.2's key exchange: not needed, and Finished is encrypted
			}
			ch, err := parseClientHello(m.body)
			if err != nil {
				return
			}
			f.clientHellos = append(f.clientHellos, ch)
			if len(f.clientHellos) == want {
				return
			}
		}
	}
}
