// Package events serves projects' event logs live and keeps them bounded:
//
//   - hub.go: the Hub fans the store's new events out to subscribers (the
//     API's server-sent-events streams). It reads the store after each of
//     the store's event notices (WatchEvents: on PostgreSQL these come from
//     every node, so an event recorded on node A reaches a stream on node
//     B), at most one read per project with subscribers, and pushes each
//     event to every subscriber of its project through a bounded buffer;
//     a subscriber that falls behind is dropped and resumes from its last
//     event ID.
//   - maintain.go: the periodic work every node runs: certificate.expiring
//     for certificates with a third of their lifetime left and not renewed
//     (once per certificate and fleet, by the event's key), and the
//     retention of events and finished webhook deliveries.
//
// The events themselves are recorded by the store (domain and service
// changes, in their own transactions), the certificate manager
// (certificate events) and the API (token events).
//
// Package events may import store.
//
// Imports: never internal/api, internal/node, internal/edge, internal/certs.
package events
