// Package accesslog writes one line per request the edge answered, in the
// format of Spine's logging pipeline (internal/logging: slog's text or JSON
// lines), and defines the request ID that names the request in the line,
// in the X-Request-ID sent upstream and in the answer to the client.
//
// Writing never waits on the request path: Log copies the entry into a
// queue of Config.Buffer entries (default 4,096) and returns; a background
// writer formats the lines and writes them in batches. The lines are
// written out by hand, byte for byte as internal/logging's slog handlers
// write the same record (format_test.go checks that). When the queue is
// full (a slow disk, a blocked pipe) the entry is dropped and counted
// (Stats). Each entry's strings are bounded when queued (see Entry), so
// the queue's memory is bounded too.
//
// A file is opened for appending, created 0640, and opened again by
// Reopen (spine wires it to SIGUSR1, as nginx and Traefik do), so that
// logrotate can rename it and signal; copytruncate works as well, since
// every write appends.
//
// internal/logging imports go.uber.org/zap (its certmagic bridge); this
// package uses only its slog handlers.
//
// Imports: only the standard library, internal/logging, go.uber.org/zap.
package accesslog
