// Package certs obtains, renews and serves the TLS certificates of the
// hostnames Spine serves, using certmagic.
//
// A Manager owns one certmagic cache and config. Sync hands it the full set
// of hostnames (from the store snapshot); it starts managing new names at
// once, in the background, and stops managing names that went away.
// GetCertificate serves only names of that set (and ACME TLS-ALPN-01
// challenges): an unknown server name gets an error, so the TLS handshake
// fails with an alert instead of showing another name's certificate. There
// is no on-demand issuance and no default certificate.
//
// Each hostname has a visible status (store.CertStatus: pending, issuing,
// active, failed) kept in memory and written to a StatusStore.
//
// ACME orders are placed by ACMEIssuer (acmeissuer.go) with acmez; the
// HTTP-01 and TLS-ALPN-01 challenges it presents are kept in storage and
// answered by whichever node the CA reaches (challenge.go).
//
// Wildcard names are validated through DNS-01 only: DNS01Mux (dns01.go)
// hands each challenge to the DNS provider of the domain's zone or to
// Spine's delegation zone; DNS01 (delegation.go) builds both from an
// ACMEConfig and says which domains can have wildcard certificates. CAIssuer (caissuer.go) is the internal CA as an
// issuer that gets its CA once the store answers and stops an issuance
// whose lease is lost.
//
// Uploaded (uploaded.go) serves the certificates projects uploaded for
// their hostnames instead of managed ones, and a removed one until the
// Manager has a valid certificate for the name.
//
// Suspended (suspended.go) serves a suspended project's hostnames the
// certificate they last had, read from storage, since the Manager no
// longer manages (or renews) them.
//
// Sources (sources.go) is the order the edge asks them in: an upload, a
// suspended name's certificate, then the Manager (or what stands in for it).
//
// Certificates, keys and ACME accounts live in a certmagic.Storage; storage.go
// provides one over the store's key-value space and leases, so a fleet of
// nodes shares them and issues each certificate once.
//
// Package certs imports store (for its records), ca (the default issuer)
// and dnsserver (the delegation zone DNS01 builds).
//
// Imports: never internal/edge, internal/api.
package certs
