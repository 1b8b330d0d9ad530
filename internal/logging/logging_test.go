package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// lines decodes buf as JSON lines, failing the test on any other line.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// one is the only line in buf.
func one(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	ls := lines(t, buf)
	if len(ls) != 1 {
		t.Fatalf("%d lines, want 1:\n%s", len(ls), buf)
	}
	return ls[0]
}

func jsonHandler(buf *bytes.Buffer, level slog.Level) slog.Handler {
	return New(buf, JSON, level).Handler()
}

func TestZapFields(t *testing.T) {
	var buf bytes.Buffer
	when := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	zap.New(newCore(jsonHandler(&buf, slog.LevelDebug))).Info("fields",
		zap.String("s", "text"),
		zap.Int("i", -3),
		zap.Uint16("u", 7),
		zap.Bool("b", true),
		zap.Float64("f", 1.5),
		zap.Duration("d", 1500*time.Millisecond),
		zap.Time("t", when),
		zap.Strings("identifiers", []string{"a.example", "b.example"}),
		zap.ByteString("bs", []byte("bytes")),
		zap.Stringer("stringer", net("10.0.0.0/8")),
		zap.Any("map", map[string]int{"k": 1}),
		zap.Object("obj", zapcore.ObjectMarshalerFunc(func(e zapcore.ObjectEncoder) error {
			e.AddString("inner", "v")
			return nil
		})),
		zap.Namespace("ns"),
		zap.String("nested", "yes"),
	)
	got := one(t, &buf)
	want := map[string]any{
		"msg":         "fields",
		"level":       "INFO",
		"s":           "text",
		"i":           -3.0,
		"u":           7.0,
		"b":           true,
		"f":           1.5,
		"d":           float64(1500 * time.Millisecond), // slog's JSON writes nanoseconds
		"t":           when.Format(time.RFC3339),
		"identifiers": []any{"a.example", "b.example"},
		"bs":          "bytes",
		"stringer":    "10.0.0.0/8",
		"map":         map[string]any{"k": 1.0},
		"obj":         map[string]any{"inner": "v"},
		"ns":          map[string]any{"nested": "yes"},
	}
	for k, v := range want {
		if g, w := fmt.Sprint(got[k]), fmt.Sprint(v); g != w {
			t.Errorf("%s = %s, want %s", k, g, w)
		}
	}
	if _, ok := got["time"]; !ok {
		t.Errorf("no time: %v", got)
	}
	if _, ok := got["logger"]; ok {
		t.Errorf("an unnamed logger's line has a logger attribute: %v", got)
	}
}

type net string

func (n net) String() string { return string(n) }

func TestZapLevels(t *testing.T) {
	var buf bytes.Buffer
	l := zap.New(newCore(jsonHandler(&buf, slog.LevelDebug))).Named("other")
	l.Debug("d")
	l.Info("i")
	l.Warn("w")
	l.Error("e")
	l.DPanic("dp") // no panic: not a development logger
	var got []string
	for _, m := range lines(t, &buf) {
		got = append(got, fmt.Sprint(m["msg"], "=", m["level"]))
	}
	if w := "d=DEBUG i=INFO w=WARN e=ERROR dp=ERROR"; strings.Join(got, " ") != w {
		t.Errorf("levels %v, want %s", got, w)
	}
}

func TestZapNamedLoggers(t *testing.T) {
	var buf bytes.Buffer
	Certmagic(jsonHandler(&buf, slog.LevelInfo)).Named("obtain").Warn("x")
	if got := one(t, &buf)["logger"]; got != "certmagic.obtain" {
		t.Errorf("logger = %v, want certmagic.obtain", got)
	}
}

func TestZapErrors(t *testing.T) {
	var buf bytes.Buffer
	var seen atomic.Value
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == "error" || a.Key == "cause" {
			seen.Store(a.Value.Any())
		}
		return a
	}})
	base := errors.New("connection refused")
	err := fmt.Errorf("obtaining certificate: %w", base)
	zap.New(newCore(h)).Error("could not get certificate from issuer", zap.Error(err))
	got := one(t, &buf)
	if got["error"] != "obtaining certificate: connection refused" {
		t.Errorf("error = %v", got["error"])
	}
	if e, ok := seen.Load().(error); !ok || !errors.Is(e, base) {
		t.Errorf("the handler saw %T, want the error value itself", seen.Load())
	}
	buf.Reset()
	zap.New(newCore(h)).Warn("w", zap.NamedError("cause", err), zap.Error(nil))
	got = one(t, &buf)
	if got["cause"] != err.Error() {
		t.Errorf("cause = %v", got["cause"])
	}
	if _, ok := got["error"]; ok {
		t.Errorf("zap.Error(nil) wrote an attribute: %v", got)
	}
}

func TestZapWithFields(t *testing.T) {
	var buf bytes.Buffer
	root := zap.New(newCore(jsonHandler(&buf, slog.LevelDebug)))
	child := root.With(zap.String("identifier", "a.example"), zap.Int("attempt", 2))
	child.Named("renew").Warn("will retry", zap.String("extra", "e"))
	got := one(t, &buf)
	if got["identifier"] != "a.example" || got["attempt"] != 2.0 || got["extra"] != "e" || got["logger"] != "renew" {
		t.Errorf("With fields not carried: %v", got)
	}
	buf.Reset()
	root.Warn("parent")
	if got := one(t, &buf); got["identifier"] != nil {
		t.Errorf("With fields leaked to the parent: %v", got)
	}
	// A namespace opened by With groups what follows.
	buf.Reset()
	root.With(zap.String("top", "t"), zap.Namespace("req")).Info("ns", zap.String("id", "7"))
	got = one(t, &buf)
	if got["top"] != "t" || fmt.Sprint(got["req"]) != "map[id:7]" {
		t.Errorf("With namespace: %v", got)
	}
}

func TestZapDebugDroppedAtInfo(t *testing.T) {
	var buf bytes.Buffer
	var evaluated atomic.Int32
	l := Certmagic(jsonHandler(&buf, slog.LevelInfo))
	if l.Core().Enabled(zapcore.DebugLevel) {
		t.Error("the core says Debug is enabled under an Info handler")
	}
	l.Debug("fetched SOA", zap.Stringer("expensive", counted{&evaluated}))
	if buf.Len() != 0 {
		t.Errorf("a Debug line was written at Info: %s", &buf)
	}
	if evaluated.Load() != 0 {
		t.Error("the fields of a dropped line were encoded")
	}
}

type counted struct{ n *atomic.Int32 }

func (c counted) String() string { c.n.Add(1); return "x" }

// certmagic logs routine per-hostname steps at Info; they are Debug, and
// the lines that tell an operator what happened stay Info.
func TestCertmagicLevels(t *testing.T) {
	for _, tc := range []struct {
		logger, msg string
		level       zapcore.Level
		want        string // level shown, "" if dropped at Info
	}{
		{"obtain", "acquiring lock", zapcore.InfoLevel, ""},
		{"obtain", "lock acquired", zapcore.InfoLevel, ""},
		{"obtain", "releasing lock", zapcore.InfoLevel, ""},
		{"obtain", "obtaining certificate", zapcore.InfoLevel, ""},
		{"obtain", "certificate already exists in storage", zapcore.InfoLevel, ""},
		{"maintenance", "started background certificate maintenance", zapcore.InfoLevel, ""},
		{"obtain", "certificate obtained successfully", zapcore.InfoLevel, "INFO"},
		{"renew", "certificate renewed successfully", zapcore.InfoLevel, "INFO"},
		{"obtain", "could not get certificate from issuer", zapcore.ErrorLevel, "ERROR"},
		{"renew", "will retry", zapcore.ErrorLevel, "ERROR"},
		{"cache", "no renewal time had been selected with ARI; chose an ephemeral one for now", zapcore.WarnLevel, "WARN"},
	} {
		for _, threshold := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
			var buf bytes.Buffer
			Certmagic(jsonHandler(&buf, threshold)).Named(tc.logger).Check(tc.level, tc.msg).Write(zap.String("identifier", "a.example"))
			want := tc.want
			if threshold == slog.LevelDebug && want == "" {
				want = "DEBUG"
			}
			got := ""
			if buf.Len() > 0 {
				m := one(t, &buf)
				got, _ = m["level"].(string)
				if m["identifier"] != "a.example" || m["logger"] != "certmagic."+tc.logger {
					t.Errorf("%q: %v", tc.msg, m)
				}
			}
			if got != want {
				t.Errorf("certmagic %s %q under %v: shown at %q, want %q", tc.level, tc.msg, threshold, got, want)
			}
		}
	}
}

func TestAcmezLevels(t *testing.T) {
	var info, debug bytes.Buffer
	for _, l := range []*slog.Logger{Acmez(jsonHandler(&info, slog.LevelInfo)), Acmez(jsonHandler(&debug, slog.LevelDebug))} {
		l.Info("trying to solve challenge", "identifier", "a.example")
		l.With("order", "o1").Info("authorization finalized")
		l.Warn("HTTP request failed; retrying", "error", "boom")
		l.Error("challenge failed", "problem", "urn:ietf:params:acme:error:unauthorized")
	}
	var got []string
	for _, m := range lines(t, &info) {
		if m["logger"] != "acmez" {
			t.Errorf("no logger=acmez: %v", m)
		}
		got = append(got, fmt.Sprint(m["level"], " ", m["msg"]))
	}
	if w := "WARN HTTP request failed; retrying|ERROR challenge failed"; strings.Join(got, "|") != w {
		t.Errorf("acmez at Info showed %q, want %q", got, w)
	}
	got = nil
	for _, m := range lines(t, &debug) {
		got = append(got, fmt.Sprint(m["level"], " ", m["msg"]))
		if m["msg"] == "authorization finalized" && m["order"] != "o1" {
			t.Errorf("With attributes lost: %v", m)
		}
	}
	if w := "DEBUG trying to solve challenge|DEBUG authorization finalized|WARN HTTP request failed; retrying|ERROR challenge failed"; strings.Join(got, "|") != w {
		t.Errorf("acmez at Debug showed %q, want %q", got, w)
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "warning": slog.LevelWarn, "Error": slog.LevelError} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "trace", "INFO+2", "0", " info"} {
		if _, err := ParseLevel(bad); err == nil || !strings.Contains(err.Error(), "debug, info, warn or error") {
			t.Errorf("ParseLevel(%q): %v", bad, err)
		}
	}
	for in, want := range map[string]Format{"text": Text, "JSON": JSON} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("logfmt"); err == nil || !strings.Contains(err.Error(), "text or json") {
		t.Errorf("ParseFormat(logfmt): %v", err)
	}
}

func TestNewFormats(t *testing.T) {
	var text, js bytes.Buffer
	New(&text, Text, slog.LevelWarn).Info("dropped")
	New(&text, Text, slog.LevelWarn).Warn("kept", "k", "v")
	if s := text.String(); !strings.Contains(s, `level=WARN msg=kept k=v`) || strings.Contains(s, "dropped") {
		t.Errorf("text: %q", s)
	}
	New(&js, JSON, slog.LevelInfo).Info("hello", "k", "v")
	m := one(t, &js)
	if m["msg"] != "hello" || m["level"] != "INFO" || m["k"] != "v" || m["time"] == nil {
		t.Errorf("json: %v", m)
	}
}
