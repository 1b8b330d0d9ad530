// Package fleet holds the fleet-mode tests: several real `spine serve`
// processes on 127.0.0.x sharing one real PostgreSQL (one issuance per name,
// change propagation, session resumption across nodes, fail static with
// PostgreSQL stopped), and the propagation benchmark.
//
// The tests build the spine binary once (TestMain; with the spinetest build
// tag, for its --test-issue-delay flag) and need PostgreSQL on
// SPINE_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/test); the
// tests that stop PostgreSQL start a private cluster of their own with the
// PostgreSQL 15 binaries (initdb, pg_ctl), never touching the shared one.
// SPINE_TEST_POSTGRES=skip skips them all.
package fleet
