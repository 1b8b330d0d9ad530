package logging

import (
	"context"
	"log/slog"
	"strings"

	"go.uber.org/zap"
)

// Certmagic returns the zap logger to give certmagic: its lines go to h,
// under logger names that start with "certmagic", at the levels
// libraryLevel gives them.
func Certmagic(h slog.Handler) *zap.Logger {
	return zap.New(newCore(h)).Named("certmagic")
}

// Acmez returns the slog logger to give acmez: its lines go to h with the
// attribute logger=acmez, at the levels libraryLevel gives them.
func Acmez(h slog.Handler) *slog.Logger {
	return slog.New(libraryHandler{h: h.WithAttrs([]slog.Attr{slog.String("logger", "acmez")}), logger: "acmez"})
}

// operatorInfo lists, per library (the first part of a logger's name), the
// Info lines that tell an operator something: a certificate was issued or
// renewed (each line names the hostname and the issuer), or a revoked one
// was replaced. A library's other Info lines are routine steps, most of
// them once per hostname and attempt, and are shown at Debug:
//
//	certmagic  acquiring lock, lock acquired, releasing lock, obtaining
//	           certificate, certificate already exists in storage, renewing
//	           certificate, certificate expires soon; queuing for renewal,
//	           attempting certificate renewal, served key authentication,
//	           started/stopped background certificate maintenance, ...
//	acmez      trying to solve challenge, authorization finalized,
//	           validations succeeded; finalizing order, successfully
//	           downloaded available certificate chains, ...
//
// Lines at Debug, Warn and Error keep their level, and so do lines of
// loggers not listed here (Spine's own lines never pass through here).
// Checked against certmagic v0.25.6 and acmez v3.1.7: an Info line that a
// later version adds is shown at Debug until it is listed.
var operatorInfo = map[string]map[string]bool{
	"certmagic": {
		"certificate obtained successfully":                      true,
		"certificate renewed successfully":                       true,
		"forcefully renewing certificate due to REVOKED status":  true,
		"removed certificate's compromised private key from use": true,
	},
	"acmez": {},
}

// libraryLevel is the level a line that logger logged at level is shown
// at. It never raises a level.
func libraryLevel(logger, msg string, level slog.Level) slog.Level {
	if level != slog.LevelInfo || logger == "" {
		return level
	}
	lib, _, _ := strings.Cut(logger, ".")
	keep, ok := operatorInfo[lib]
	if !ok || keep[msg] {
		return level
	}
	return slog.LevelDebug
}

// libraryHandler is the handler of a library that logs with slog: the
// library's lines at the levels libraryLevel gives them.
type libraryHandler struct {
	h      slog.Handler
	logger string
}

// Enabled asks about the level the line was logged at: libraryLevel only
// lowers levels, so a line it lowers below the threshold is dropped in
// Handle.
func (l libraryHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l libraryHandler) Handle(ctx context.Context, r slog.Record) error {
	if level := libraryLevel(l.logger, r.Message, r.Level); level != r.Level {
		if !l.h.Enabled(ctx, level) {
			return nil
		}
		r.Level = level
	}
	return l.h.Handle(ctx, r)
}

func (l libraryHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return libraryHandler{h: l.h.WithAttrs(attrs), logger: l.logger}
}

func (l libraryHandler) WithGroup(name string) slog.Handler {
	return libraryHandler{h: l.h.WithGroup(name), logger: l.logger}
}
