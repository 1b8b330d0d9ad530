// Package syncer keeps what a node serves in step with the store: after
// every change notice, and at least every resync interval, it reads what
// changed (store.ChangesSince) and applies it as a delta, or reads every
// service, domain, project, token and uploaded certificate and applies
// the whole (serving.Compute): routes to the edge, hostnames to the
// certificate manager, suspended hostnames and uploaded certificates to
// the certificate sources, tokens and services to the API's reads while
// the store is away, and a request for a new fail-static snapshot. It
// remembers what it applied last (Last) for the snapshot writer and the
// metrics. With the store away, the edge keeps what was applied last.
//
// Every part it drives comes in as a small interface defined here; node
// builds the Loop and runs it. Package syncer may import store, serving,
// edge (its Route) and fleet (the snapshot a node starts from).
//
// Imports: never internal/node, internal/api, internal/certs.
package syncer
