// Package pebbletest runs a real ACME CA (Let's Encrypt's Pebble, in
// process) and a small recursive-looking DNS server for tests, so that
// Spine's ACME code is tested against the protocol a public CA speaks
// without ever reaching a public CA or public DNS: everything listens on
// 127.0.0.1.
//
// Pebble reads its PEBBLE_* environment variables when it starts; Start
// sets PEBBLE_VA_NOSLEEP=1 unless the test set it, so tests must not run in
// parallel with another that changes them.
//
// No Spine binary imports it.
//
// Imported by: tests only.
package pebbletest
