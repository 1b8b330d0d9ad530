// Package dnsserver is Spine's small authoritative DNS server for one zone
// (for example "acme.spine.example.net."), used for delegated ACME DNS-01:
// a customer creates once
//
//	_acme-challenge.example.com. CNAME <label>.acme.spine.example.net.
//
// and Spine answers every later DNS-01 challenge for example.com (and
// *.example.com) by writing the key authorization digest as a TXT record at
// <label>.acme.spine.example.net. in a RecordStore, without any DNS
// credentials of the customer. DelegationLabel and CNAMETarget compute that
// name; Solver is the acmez.Solver that writes and removes the records.
//
// The server answers SOA and NS at the apex, TXT from a RecordStore, NXDOMAIN
// and NODATA with the SOA in the authority section, and REFUSED for names
// outside its zone, over UDP and TCP. With TSIG keys configured it also
// accepts RFC 2136 dynamic updates of TXT records (so it can stand in for a
// customer's DNS server in tests) and TSIG-signed AXFR.
//
// KVStore keeps the records in the shared key-value space (a *store.DB), so
// every node of a fleet serves the same records; MemoryStore is for a single
// process and tests.
//
// Delegations (delegations.go) is the delegation state a fleet shares
// through the store: the key of the labels, made once for the fleet, and
// which domains' _acme-challenge CNAMEs have been seen pointing at their
// label; its Check looks them up.
//
// Zone (zone.go) puts them together for a node: the delegations, the
// Solver, and the Server of the zone, started, served and shut down.
//
// This package imports internal/store only for store.ErrNotFound and the
// store.Domain record.
//
// Imports: never internal/api, internal/platform, internal/certs, internal/edge.
package dnsserver
