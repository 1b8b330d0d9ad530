// Package metrics owns Spine's Prometheus metrics: the registry, the
// handler that serves it (GET /metrics), and the recorders the request
// path, the TLS listener, the certificate manager and the ACME client call.
//
// Names follow the conventions operators already alert on (cert-manager's
// certificate series, the Go and process collectors). Label sets are
// bounded: per hostname or per service at most, never per path, client or
// certificate serial (a serial label leaves a stale series behind at every
// renewal, traefik#8606). What describes the node's state (certificates,
// upstream health, the store, the fleet) is read at scrape time from
// Sources, so a hostname's series go with the hostname. What counts events
// (requests, handshakes, orders) is counted as it happens.
//
// The request path's recorder (Service) is made once per service, at its
// first request, and kept in the route table's entry for the service: a
// request then costs two atomic adds and a histogram observation, with no
// allocation and no lock.
//
// Imports: never internal/store, internal/edge, internal/certs, internal/api, internal/node.
package metrics
