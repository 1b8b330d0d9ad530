package api

import (
	"log/slog"
	"net/http"
	"time"
)

// NewServer returns the API listener's server for h (the API's Handler,
// with the dashboard beside it): its timeouts bound a slow client (10 s
// for the header, 30 s to read a request, 60 s to write an answer, 2 min
// idle), its header is at most 64 KiB, and net/http's own errors go to log
// at Warn.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
