package platform

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

// Client certificate modes of a service (mTLS).
const (
	ClientAuthRequire  = "require"  // a handshake without a certificate the CA verifies fails
	ClientAuthOptional = "optional" // any client gets through; the upstream is told whether it has a verified certificate
	ClientAuthOff      = "off"      // in an update: no client certificate any more
)

// maxClientCAs bounds the certificates of a service's client CA.
const maxClientCAs = 16

// checkClientCA parses the PEM of a service's client CA and returns it
// re-encoded (certificates only).
func checkClientCA(data string) (string, error) {
	var out []byte
	rest := []byte(data)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return "", invalid("invalid_client_ca", fmt.Sprintf("the client CA file holds %s; it may hold only CERTIFICATE blocks", blockKind(b.Type)))
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return "", invalid("invalid_client_ca", fmt.Sprintf("certificate %d of the client CA file cannot be read: %v", n+1, err))
		}
		n++
		if n > maxClientCAs {
			return "", invalid("invalid_client_ca", fmt.Sprintf("the client CA file holds more than %d certificates", maxClientCAs))
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if n == 0 {
		return "", invalid("invalid_client_ca", "the client CA file holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	return string(out), nil
}

// checkClientAuth checks a mode given with a client CA.
func checkClientAuth(mode string) (string, error) {
	switch strings.ToLower(mode) {
	case "":
		return ClientAuthRequire, nil
	case ClientAuthRequire, ClientAuthOptional:
		return strings.ToLower(mode), nil
	}
	return "", invalid("invalid_client_auth", fmt.Sprintf("client_auth %q: give require or optional (off, in an update, turns client certificates off)", truncate(mode, 40)))
}

// clientAuthOf returns the client CA and mode a service is created with.
func clientAuthOf(ca, mode string) (string, string, error) {
	if ca == "" {
		if mode != "" {
			return "", "", invalid("invalid_client_auth", "client_auth needs client_ca: give the CA that verifies clients' certificates (--client-ca FILE)")
		}
		return "", "", nil
	}
	pemCA, err := checkClientCA(ca)
	if err != nil {
		return "", "", err
	}
	m, err := checkClientAuth(mode)
	return pemCA, m, err
}

// changeClientAuth applies an update's client CA and mode to s's.
func changeClientAuth(curCA, curMode string, ca, mode *string) (string, string, error) {
	switch {
	case mode != nil && strings.EqualFold(*mode, ClientAuthOff), ca != nil && *ca == "":
		if ca != nil && *ca != "" {
			return "", "", invalid("invalid_client_auth", "client_auth off turns client certificates off; give no client_ca with it")
		}
		return "", "", nil
	case ca != nil:
		m := curMode
		if mode != nil {
			m = *mode
		}
		return clientAuthOf(*ca, m)
	case mode != nil:
		if curCA == "" {
			return "", "", invalid("invalid_client_auth", "this service has no client CA; give one with client_ca (--client-ca FILE)")
		}
		m, err := checkClientAuth(*mode)
		return curCA, m, err
	}
	return curCA, curMode, nil
}
