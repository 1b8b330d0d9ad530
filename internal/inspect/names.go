package inspect

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// Names of the numbers on the wire. crypto/tls names versions, cipher
// suites, groups and signature schemes; this file adds GREASE values, the
// P-256 spelling users know, extension names and what each group is.

// isGREASE reports whether v is a GREASE value (RFC 8701: 0x?A?A).
func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

func versionName(v uint16) string {
	if isGREASE(v) {
		return "GREASE"
	}
	switch v {
	case 0x0300:
		return "SSL 3.0"
	}
	return tls.VersionName(v)
}

func groupName(g uint16) string {
	if isGREASE(g) {
		return "GREASE"
	}
	switch tls.CurveID(g) {
	case tls.CurveP256:
		return "P-256"
	case tls.CurveP384:
		return "P-384"
	case tls.CurveP521:
		return "P-521"
	}
	s := tls.CurveID(g).String()
	if strings.HasPrefix(s, "CurveID(") {
		return fmt.Sprintf("0x%04X", g)
	}
	return s
}

// postQuantum reports whether group is a hybrid with ML-KEM.
func postQuantum(g uint16) bool {
	switch tls.CurveID(g) {
	case tls.X25519MLKEM768, tls.SecP256r1MLKEM768, tls.SecP384r1MLKEM1024:
		return true
	}
	return false
}

// groupWhat says in words what a key-exchange group is.
func groupWhat(g uint16) string {
	switch tls.CurveID(g) {
	case tls.X25519MLKEM768:
		return "post-quantum hybrid: X25519 elliptic-curve Diffie-Hellman combined with ML-KEM-768 (FIPS 203); the session stays secret unless both are broken"
	case tls.SecP256r1MLKEM768:
		return "post-quantum hybrid: P-256 elliptic-curve Diffie-Hellman combined with ML-KEM-768"
	case tls.SecP384r1MLKEM1024:
		return "post-quantum hybrid: P-384 elliptic-curve Diffie-Hellman combined with ML-KEM-1024"
	case tls.X25519:
		return "elliptic-curve Diffie-Hellman on Curve25519 (not post-quantum: a future quantum computer could recover recorded sessions)"
	case tls.CurveP256, tls.CurveP384, tls.CurveP521:
		return "elliptic-curve Diffie-Hellman on a NIST curve (not post-quantum: a future quantum computer could recover recorded sessions)"
	}
	return "an unknown group"
}

func suiteName(cs uint16) string {
	if isGREASE(cs) {
		return "GREASE"
	}
	if cs == 0x00ff {
		return "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"
	}
	return tls.CipherSuiteName(cs)
}

func schemeName(s uint16) string {
	if isGREASE(s) {
		return "GREASE"
	}
	name := tls.SignatureScheme(s).String()
	if strings.HasPrefix(name, "SignatureScheme(") {
		return fmt.Sprintf("0x%04X", s)
	}
	return name
}

var extensionNames = map[uint16]string{
	0: "server_name", 1: "max_fragment_length", 5: "status_request", 10: "supported_groups",
	11: "ec_point_formats", 13: "signature_algorithms", 14: "use_srtp", 15: "heartbeat",
	16: "application_layer_protocol_negotiation", 18: "signed_certificate_timestamp",
	21: "padding", 22: "encrypt_then_mac", 23: "extended_master_secret", 27: "compress_certificate",
	28: "record_size_limit", 35: "session_ticket", 41: "pre_shared_key", 42: "early_data",
	43: "supported_versions", 44: "cookie", 45: "psk_key_exchange_modes", 47: "certificate_authorities",
	49: "post_handshake_auth", 50: "signature_algorithms_cert", 51: "key_share",
	57: "quic_transport_parameters", 0xfe0d: "encrypted_client_hello", 0xff01: "renegotiation_info",
}

func extensionName(e uint16) string {
	if isGREASE(e) {
		return "GREASE"
	}
	if n, ok := extensionNames[e]; ok {
		return n
	}
	return fmt.Sprintf("0x%04X", e)
}

func names(vs []uint16, name func(uint16) string) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, name(v))
	}
	return out
}

// alertName names an alert description in plain words.
func alertName(d uint8) string {
	return strings.TrimPrefix(tls.AlertError(d).Error(), "tls: ")
}
