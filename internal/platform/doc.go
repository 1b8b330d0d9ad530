// Package platform holds Spine's rules: who owns which domain, which
// hostnames a service may have, how names are normalised and checked, and
// how API tokens are made and checked. It reads and writes through the small
// Store interface it defines; it knows nothing of HTTP, TLS or certmagic.
// The rules of a hostname itself are package hostname's.
//
// Imports: never internal/edge, internal/api, internal/certs, net/http,
// crypto/tls, github.com/caddyserver/certmagic.
package platform
