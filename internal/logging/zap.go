package logging

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.uber.org/zap/zapcore"
)

// core is a zapcore.Core that writes to a slog.Handler: zap's entry
// becomes a slog.Record with the entry's time, message and level, the
// logger's name as the attribute "logger", and the fields as attributes in
// their order (zap.Namespace opens a group). The level a line is written at
// is the one libraryLevel gives for its logger and message; it is never
// above the level it was logged at, so Enabled can ask the handler about
// the logged level.
//
// Why not a library: zap's own zapslog (go.uber.org/zap/exp) goes the
// other way (a slog.Handler over a zap core), as caddy does; the way round
// Spine needs, so that config.Config.Logger, a plain *slog.Logger that a
// library caller may back with any handler, receives certmagic's lines, is
// only planned there (uber-go/zap#1333). The third-party bridges either
// target their own logger interface rather than log/slog or are not
// maintained enough to rely on, and this one is a hundred lines.
type core struct {
	h slog.Handler // with the fields of With applied
}

var _ zapcore.Core = core{}

// newCore returns the bridge over h.
func newCore(h slog.Handler) zapcore.Core { return core{h: h} }

func (c core) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c core) With(fields []zapcore.Field) zapcore.Core {
	if len(fields) == 0 {
		return c
	}
	enc := newAttrEncoder()
	addFields(enc, fields)
	h := c.h.WithAttrs(enc.groups[0])
	for i, name := range enc.names {
		h = h.WithGroup(name).WithAttrs(enc.groups[i+1])
	}
	return core{h: h}
}

func (c core) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.h.Enabled(context.Background(), entryLevel(ent)) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c core) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	var pc uintptr
	if ent.Caller.Defined {
		pc = ent.Caller.PC
	}
	r := slog.NewRecord(ent.Time, entryLevel(ent), ent.Message, pc)
	if ent.LoggerName != "" {
		r.AddAttrs(slog.String("logger", ent.LoggerName))
	}
	enc := newAttrEncoder()
	addFields(enc, fields)
	r.AddAttrs(enc.attrs()...)
	if ent.Stack != "" {
		r.AddAttrs(slog.String("stack", ent.Stack))
	}
	return c.h.Handle(context.Background(), r)
}

// Sync does nothing: slog handlers write each line as it comes.
func (c core) Sync() error { return nil }

// entryLevel is the level ent is written at.
func entryLevel(ent zapcore.Entry) slog.Level {
	return libraryLevel(ent.LoggerName, ent.Message, slogLevel(ent.Level))
}

// slogLevel maps zap's levels to slog's; DPanic, Panic and Fatal are
// errors (zap itself panics or exits after the write).
func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// addFields adds zap fields to enc. An error stays an error value, so that
// handlers (and ReplaceAttr functions) see it as one.
func addFields(enc *attrEncoder, fields []zapcore.Field) {
	for _, f := range fields {
		if err, ok := f.Interface.(error); ok && f.Type == zapcore.ErrorType {
			enc.add(slog.Any(f.Key, err))
			continue
		}
		f.AddTo(enc)
	}
}

// attrEncoder is a zapcore.ObjectEncoder that collects slog attributes.
// groups[0] holds the top-level attributes; each namespace opened adds a
// group, named in names, that holds the attributes added after it.
type attrEncoder struct {
	groups [][]slog.Attr
	names  []string
}

var _ zapcore.ObjectEncoder = (*attrEncoder)(nil)

func newAttrEncoder() *attrEncoder { return &attrEncoder{groups: make([][]slog.Attr, 1)} }

func (e *attrEncoder) add(a slog.Attr) {
	i := len(e.groups) - 1
	e.groups[i] = append(e.groups[i], a)
}

// attrs returns the attributes, namespaces folded into nested groups.
func (e *attrEncoder) attrs() []slog.Attr {
	out := e.groups[len(e.groups)-1]
	for i := len(e.names) - 1; i >= 0; i-- {
		out = append(e.groups[i], slog.Attr{Key: e.names[i], Value: slog.GroupValue(out...)})
	}
	return out
}

func (e *attrEncoder) OpenNamespace(key string) {
	e.names = append(e.names, key)
	e.groups = append(e.groups, nil)
}

func (e *attrEncoder) AddObject(key string, m zapcore.ObjectMarshaler) error {
	sub := newAttrEncoder()
	err := m.MarshalLogObject(sub)
	e.add(slog.Attr{Key: key, Value: slog.GroupValue(sub.attrs()...)})
	return err
}

func (e *attrEncoder) AddArray(key string, m zapcore.ArrayMarshaler) error {
	// zap's map encoder turns an array into a []any, which both of slog's
	// handlers print.
	mo := zapcore.NewMapObjectEncoder()
	err := mo.AddArray(key, m)
	e.add(slog.Any(key, mo.Fields[key]))
	return err
}

func (e *attrEncoder) AddReflected(key string, v any) error {
	e.add(slog.Any(key, v))
	return nil
}

func (e *attrEncoder) AddBinary(key string, v []byte)     { e.add(slog.Any(key, v)) }
func (e *attrEncoder) AddByteString(key string, v []byte) { e.add(slog.String(key, string(v))) }
func (e *attrEncoder) AddBool(key string, v bool)         { e.add(slog.Bool(key, v)) }
func (e *attrEncoder) AddComplex128(key string, v complex128) {
	e.add(slog.String(key, fmt.Sprint(v))) // encoding/json has no complex numbers
}
func (e *attrEncoder) AddComplex64(key string, v complex64) { e.AddComplex128(key, complex128(v)) }
func (e *attrEncoder) AddDuration(key string, v time.Duration) {
	e.add(slog.Duration(key, v))
}
func (e *attrEncoder) AddFloat64(key string, v float64) { e.add(slog.Float64(key, v)) }
func (e *attrEncoder) AddFloat32(key string, v float32) { e.add(slog.Float64(key, float64(v))) }
func (e *attrEncoder) AddInt(key string, v int)         { e.add(slog.Int(key, v)) }
func (e *attrEncoder) AddInt64(key string, v int64)     { e.add(slog.Int64(key, v)) }
func (e *attrEncoder) AddInt32(key string, v int32)     { e.add(slog.Int64(key, int64(v))) }
func (e *attrEncoder) AddInt16(key string, v int16)     { e.add(slog.Int64(key, int64(v))) }
func (e *attrEncoder) AddInt8(key string, v int8)       { e.add(slog.Int64(key, int64(v))) }
func (e *attrEncoder) AddString(key, v string)          { e.add(slog.String(key, v)) }
func (e *attrEncoder) AddTime(key string, v time.Time)  { e.add(slog.Time(key, v)) }
func (e *attrEncoder) AddUint(key string, v uint)       { e.add(slog.Uint64(key, uint64(v))) }
func (e *attrEncoder) AddUint64(key string, v uint64)   { e.add(slog.Uint64(key, v)) }
func (e *attrEncoder) AddUint32(key string, v uint32)   { e.add(slog.Uint64(key, uint64(v))) }
func (e *attrEncoder) AddUint16(key string, v uint16)   { e.add(slog.Uint64(key, uint64(v))) }
func (e *attrEncoder) AddUint8(key string, v uint8)     { e.add(slog.Uint64(key, uint64(v))) }
func (e *attrEncoder) AddUintptr(key string, v uintptr) { e.add(slog.Uint64(key, uint64(v))) }
