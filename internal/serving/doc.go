// Package serving decides, from one read of the store, what a node serves:
// of every service, the hostnames under a verified domain of its own
// project (platform.ServedOnly), of those the services the edge can route
// (edge.CheckRoute: one bad service never keeps the others from going
// live), the domains whose names share one wildcard certificate, the
// routes for the edge and the hostnames for the certificate manager, and a
// fingerprint of it all, so that a read that finds what was applied last
// changes nothing. Suspended projects (suspended.go): their routes answer
// 503 and their hostnames leave the managed set; the suspension is part of
// the fingerprint.
//
// It holds no state and starts nothing: the node reads the store, calls
// Compute and applies the result. Package serving may import store, edge
// (its Route), platform (the serving rule) and sched.
//
// Imports: never internal/node, internal/api, internal/certs, internal/fleet.
package serving
