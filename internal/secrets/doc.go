// Package secrets seals what Spine keeps that must stay secret at rest
// (private keys, session-ticket keys, signing secrets) with a key-encryption
// key read from the secret key file (--secret-key-file).
//
// A Keyring holds the file's keys, newest first: the first seals, every one
// opens, so that a fleet keeps serving while a rotation re-seals its store
// under a new key. A sealed value is text, self-describing and bound to its
// name: AES-256-GCM with the name (the storage key, the column and row) as
// additional authenticated data, so a value copied under another name does
// not open, and the key's ID in front, so that a reader knows which key of
// the ring opens it. Every secret that reaches the store or a file goes
// through a Keyring (store.DB seals them at its boundary; the fail-static
// snapshot seals its keys itself); see docs/architecture.md.
//
// Imports: only the standard library.
package secrets
