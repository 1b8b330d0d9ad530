// Package security holds Spine's end-to-end security suite: tests that start
// a real node (node.Start on 127.0.0.1 ports with a temporary data folder, or
// the real spine binary where the CLI must be driven) and attack it the way
// the internet would. It has no code of its own outside its tests.
//
// What it checks (one file each):
//
//   - tlsgrade_test.go: testssl.sh grades the HTTPS edge (protocols exactly
//     TLS 1.2 and 1.3, forward-secret AEAD suites only, no compression, no
//     insecure renegotiation, HSTS of a year, nothing at MEDIUM or above
//     except named by-design exceptions for short-lived certificates).
//   - h2spec_test.go: h2spec's HTTP/2 conformance cases against the edge.
//   - smuggling_test.go: a request-smuggling corpus on raw TLS sockets, with
//     a raw recording upstream that shows what the edge really forwarded.
//   - flood_test.go: slowloris, 1 MB headers, HTTP/2 rapid reset,
//     CONTINUATION floods and half-done TLS handshakes, while a legitimate
//     client keeps measuring its latency.
//   - isolation_test.go: SNI/Host mismatches (421), HTTP/2 connection
//     coalescing, host spelling, TLS session resumption across names, and
//     every API route called with another project's token.
//   - secrets_test.go: drives every API route and CLI command of the real
//     binary and scans every output and log for keys and tokens; file modes.
//   - badinput_test.go: every API field and CLI argument refuses bad input
//     with a message that says what to fix, and stores nothing half-way.
//
// Fuzz targets live next to the code they fuzz (hostname, platform, edge,
// api, the DNS packages) with their corpora in testdata/fuzz; .ci/fuzz runs
// each one briefly.
//
// External tools: testssl.sh (apt-get install testssl.sh) and h2spec
// (go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible).
// A test whose tool is missing fails and says how to install it.
//
// Artefacts (testssl JSON, h2spec report, flood figures, report.md) go to
// $SPINE_ARTIFACTS/security, or to $TMPDIR/spine-security when
// SPINE_ARTIFACTS is not set.
//
// Imported by: tests only.
package security
