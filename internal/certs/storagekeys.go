package certs

import (
	"path"
	"strings"

	"github.com/caddyserver/certmagic"
)

// The storage keys of a site's certificate, the ones certmagic's
// KeyBuilder gives (certmagic.StorageKeys), made without its cost for
// names already in key form. KeyBuilder.Safe builds a strings.Replacer
// and runs a regular expression for every key component, and a site's
// key has three: a look-up of a hostname's stored certificate
// (loadStored: the warm-up's, for each handshake of a name not read yet,
// and a suspended project's hostname's) made eight of them for the name
// and eight for its parent's wildcard, 16 KB of a look-up's 29 KB of
// garbage (BenchmarkStoredCertificate). A name a node serves is in normal
// form (lower case, letters, digits, dots and hyphens), which Safe leaves
// as it is: those are written here directly, and anything else still goes
// through Safe, so a key is always the one certmagic reads and writes
// (TestStorageKeysAreCertmagics, FuzzStorageKeys).

// safeKey is certmagic.StorageKeys.Safe(s).
func safeKey(s string) string {
	if keyForm(s) {
		return s
	}
	// A wildcard: Safe writes its "*" as "wildcard_" and keeps the rest.
	if rest, ok := strings.CutPrefix(s, "*"); ok && keyForm(rest) {
		return "wildcard_" + rest
	}
	return certmagic.StorageKeys.Safe(s)
}

// keyForm reports whether Safe leaves s as it is: only the bytes its last
// step keeps that its first steps do not change (lower-case letters,
// digits, "_", "@", "." and "-"), and no "..", which it removes.
func keyForm(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '@':
		case c == '.':
			if i > 0 && s[i-1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// siteKeys are the keys of one site's certificate folder.
type siteKeys struct {
	prefix string // the folder, without its final "/"
	cert   string // the certificate chain (PEM)
	key    string // the private key (PEM)
}

// siteKeysOf returns the keys of the certificate of name stored by the
// issuer whose key is issuerKey, as certmagic's CertsSitePrefix, SiteCert
// and SitePrivateKey give them.
func siteKeysOf(issuerKey, name string) siteKeys {
	sn := safeKey(name)
	prefix := path.Join("certificates", safeKey(issuerKey), sn)
	return siteKeys{prefix: prefix, cert: path.Join(prefix, sn+".crt"), key: path.Join(prefix, sn+".key")}
}
