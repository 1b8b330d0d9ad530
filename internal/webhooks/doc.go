// Package webhooks sends a project's events to its webhook endpoints, as
// the Standard Webhooks specification describes (standardwebhooks.com):
//
//   - sign.go: the signing secret ("whsec_" + base64) and the
//     webhook-signature header, v1,<base64 HMAC-SHA256 of "id.timestamp.body">;
//   - ssrf.go: the dialer that refuses, after DNS resolution and at
//     connect time, what platform.RefusedAddress refuses: loopback,
//     private, link-local, metadata and other non-public addresses (all
//     but the metadata address when the operator allows private targets);
//   - sender.go: the Sender, which takes due deliveries from the store's
//     outbox under a lease (so one node of a fleet sends each), makes one
//     attempt each with a timeout, and records the outcome: delivered,
//     retried on the specification's schedule (5 s, 5 min, 30 min, 2 h,
//     5 h, 10 h, 10 h) or later if the endpoint's Retry-After asks, given
//     up, or, for 410 Gone and for an endpoint failing for days, the
//     endpoint disabled (the store records a webhook.disabled event).
//
// Delivery is at least once: an attempt whose outcome could not be
// recorded (the node died, the store was away) is made again once its
// lease ends, with the same webhook-id, which receivers use to drop
// duplicates.
//
// The rules of what a webhook may reach and how its secret is made are
// package platform's (addresses.go, webhooks.go).
//
// Imports: never internal/api, internal/node, internal/edge, internal/certs.
package webhooks
