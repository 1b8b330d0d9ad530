// Package platform holds Spine's rules: who owns which domain, which
// hostnames a service may have, how names are normalised and checked, and
// how API tokens are made and checked. It reads and writes through the small
// Store interface it defines; it knows nothing of HTTP, TLS or certmagic.
//
// Package platform must never import the edge, the API or the certificate
// manager.
package platform
