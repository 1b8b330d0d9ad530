// Package ca is Spine's internal certificate authority: a self-made root
// and an intermediate that sign short-lived leaf certificates for names a
// public CA cannot (or should not) certify, such as *.localhost and private
// addresses. A CA is a certmagic.Issuer, so the certificate manager uses it
// like any ACME CA.
//
// The CA owns its keys and certificates, kept PEM-encoded in a
// certmagic.Storage so that every node of a fleet shares one CA:
//
//	spine/ca/root.crt          root certificate (ECDSA P-256, 10 years)
//	spine/ca/root.key          root private key
//	spine/ca/intermediate.crt  intermediate certificate (ECDSA P-256, 1 year)
//	spine/ca/intermediate.key  intermediate private key
//
// Creating or renewing them happens under the storage lock "spine-ca", so
// nodes starting together create one CA. The intermediate is renewed when
// less than a third of its life is left. Private keys never reach a log
// line or an error message.
//
// It knows storage only through certmagic.Storage.
//
// Imports: never internal/store, internal/edge, internal/api.
package ca
