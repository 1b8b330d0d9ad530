// Package dashboard serves Spine's web dashboard at /ui/ on the API
// listener: server-rendered pages (html/template, assets embedded) where a
// project sees and runs its services, hostnames, certificates, domains,
// events, tokens and webhooks, and an operator the fleet's nodes.
//
// The dashboard holds no rule of its own: every read and change goes
// through the API in-process (api.Local), with the signed-in token, so a
// page shows exactly what that token may read, a form is checked, refused
// and audited exactly as the API call it makes, and one project's session
// can reach nothing of another's.
//
// Sign-in (session.go): a token, typed into a form or exchanged for a
// single-use code (the link `spine up` prints), becomes a session kept in
// this node's memory (bounded, with an expiry), named by an HttpOnly,
// SameSite=Strict cookie (Secure over HTTPS); every form carries the
// session's CSRF token. Scripts may send "Authorization: Bearer" instead.
// Every answer has a Content-Security-Policy without inline script or
// style and with frame-ancestors 'none'.
//
// Imports: never internal/node, internal/edge, internal/certs, internal/fleet.
package dashboard
