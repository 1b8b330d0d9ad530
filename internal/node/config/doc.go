// Package config holds a node's configuration: Config, the defaults of its
// fields (the Default constants and WithDefaults), and Validate, which
// reports the first field node.Start would refuse as a *FieldError that
// names the field's path in Config ("LeafLifetime", "ACME.CAs").
//
// The checks and messages of each setting are the owning feature
// package's (edge.Settings, certs.ACMEConfig, webhooks.Settings,
// store.CheckQuota, ca.CheckLeafLifetime, ...); Validate maps their errors
// onto Config's field paths. As in caddy's provision → validate → start,
// cmd/spine and library callers build a Config and call Validate; node.Start
// validates it again, applies WithDefaults, and builds the parts from it.
//
// Package config builds nothing and opens nothing.
//
// Imports: never internal/node, internal/api.
// Imported by: only internal/node, cmd/spine, tests.
package config
