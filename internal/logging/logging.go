// Package logging is Spine's one logging pipeline. Spine logs with log/slog;
// the libraries that log with zap (certmagic) are bridged into the same
// slog.Handler by a zapcore.Core (zap.go), and the libraries that log with
// slog (acmez) are given a handler over it (library.go), so that every line
// a node writes has one format, text or JSON, and one level threshold.
//
// Library lines carry their logger's name as the attribute "logger"
// ("certmagic.obtain", "acmez"). The libraries log routine per-hostname
// steps at Info; this package shows those at Debug, by logger and message,
// so that Info holds what an operator needs (see libraryLevel).
//
// Imports: only the standard library, go.uber.org/zap.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Format is how lines are written.
type Format string

const (
	// Text is slog's text format: time=... level=INFO msg="..." key=value.
	Text Format = "text"
	// JSON is one JSON object a line, with the keys time, level and msg
	// first.
	JSON Format = "json"
)

// ParseFormat reads "text" or "json", in any case.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case Text, JSON:
		return f, nil
	}
	return "", fmt.Errorf("logging: unknown format %q (want text or json)", s)
}

// ParseLevel reads "debug", "info", "warn" (or "warning") or "error", in
// any case.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("logging: unknown level %q (want debug, info, warn or error)", s)
}

// New returns a logger that writes lines of format to w, dropping those
// below level. w must be safe for concurrent writes of whole lines (an
// *os.File is); the handler writes each line with one Write.
func New(w io.Writer, format Format, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == JSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
