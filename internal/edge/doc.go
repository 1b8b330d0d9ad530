// Package edge is Spine's data plane: it terminates TLS for every hostname in
// its route table, answers plain HTTP (ACME HTTP-01 challenges, redirects to
// HTTPS) and reverse-proxies each request to the upstreams of the service
// that owns the hostname, with round-robin balancing and active and passive
// health checks.
//
// The route table arrives whole through Server.SetRoutes, or as a delta
// through Server.UpdateRoutes, and is swapped in atomically; the request
// path reads an immutable snapshot and takes no lock. The table is split in
// shards by a hash of the hostname (table.go), so a delta copies the
// shards it touches and shares the others with the previous snapshot.
// A swap never interrupts a request, stream or connection already in flight:
// it keeps the snapshot it started with.
//
// Certificates come from Config.GetCertificate (the certificate manager); the
// edge only decides which names it is willing to serve.
//
// The edge learns everything it needs from Route values.
//
// Imports: never internal/store, internal/certs, internal/api.
package edge
