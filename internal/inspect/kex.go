package inspect

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// keyExchange explains how the connection's keys came about.
func keyExchange(cs tls.ConnectionState, sh *ServerHello) *KeyExchange {
	k := &KeyExchange{Group: sh.Group}
	group := uint16(cs.CurveID)
	suite := tls.CipherSuiteName(cs.CipherSuite)
	k.SessionKeys = aead(suite)
	k.PostQuantum = postQuantum(group)
	if cs.Version >= tls.VersionTLS13 {
		k.Ephemeral, k.ForwardSecret = true, true
		k.Explanation = fmt.Sprintf("both sides made a key pair for this connection alone and combined them (%s: %s). The TLS 1.3 key schedule (HKDF) derives from that shared secret separate keys for each direction, first for the rest of the handshake, then for the traffic: %s. The key pairs are thrown away after the handshake, so the server's certificate key, even stolen later, cannot decrypt a recording of this session (forward secrecy)",
			k.Group, groupWhat(group), k.SessionKeys)
		return k
	}
	if strings.HasPrefix(suite, "TLS_ECDHE_") {
		k.Ephemeral, k.ForwardSecret = true, true
		ems := "without the extended master secret (a weakness: RFC 7627)"
		if sh.ExtendedMasterSecret {
			ems = "with the extended master secret (RFC 7627)"
		}
		k.Explanation = fmt.Sprintf("ephemeral elliptic-curve Diffie-Hellman (%s: %s), signed by the server's certificate key; the session keys (%s) come from the master secret by the %s pseudo-random function, %s. Forward secret: the certificate key, even stolen later, cannot decrypt a recording",
			k.Group, groupWhat(group), k.SessionKeys, tls.VersionName(cs.Version), ems)
		return k
	}
	k.Group = ""
	k.Explanation = fmt.Sprintf("RSA key transport: this client encrypted the secret to the server's certificate key, so whoever gets that key later can decrypt a recording of this session (not forward secret); session keys %s", k.SessionKeys)
	return k
}

// aead names the record protection of a cipher suite.
func aead(suite string) string {
	switch {
	case strings.Contains(suite, "AES_128_GCM"):
		return "AES-128-GCM"
	case strings.Contains(suite, "AES_256_GCM"):
		return "AES-256-GCM"
	case strings.Contains(suite, "CHACHA20_POLY1305"):
		return "ChaCha20-Poly1305"
	case strings.Contains(suite, "AES_128_CBC"), strings.Contains(suite, "AES_256_CBC"):
		return "AES-CBC with HMAC (an obsolete construction, open to padding-oracle attacks)"
	case strings.Contains(suite, "3DES"):
		return "3DES-CBC (broken: 64-bit blocks)"
	case strings.Contains(suite, "RC4"):
		return "RC4 (broken)"
	}
	return suite
}
