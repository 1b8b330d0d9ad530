package accesslog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spine-platform/spine/internal/logging"
)

// Config configures a Log. The zero value works.
type Config struct {
	// Format is the lines' format. Default logging.Text.
	Format logging.Format
	// Buffer is the most entries waiting for the writer; one more is
	// dropped and counted. Default 4,096 (about 16 MiB with every string
	// a client sends at its bound; a few hundred bytes an entry in
	// practice).
	Buffer int
	// Logger receives the log's own troubles: lines dropped, a failed
	// write (each at most once a minute). Default slog.Default().
	Logger *slog.Logger
	// Gather is how long the writer lets lines gather before it writes
	// them, once one is queued (sooner when a quarter of Buffer is
	// queued): a line reaches its file up to this late, and a busy edge
	// pays one write(2) for many requests instead of one each, and wakes
	// the writer once per batch. Default 20 ms.
	Gather time.Duration
}

// DefaultGather is Config.Gather's default.
const DefaultGather = 20 * time.Millisecond

// DefaultBuffer is Config.Buffer's default.
const DefaultBuffer = 4096

// FileMode is the mode a log file is created with: readable by its group
// (adm on Debian, as nginx's logs), so that a log shipper need not run as
// Spine's user; the lines hold no secret (see Entry).
const FileMode = 0o640

// Batch sizes: lines are written in batches of whole lines up to this
// many bytes. A pipe (stderr under systemd or a container runtime) keeps
// writes of up to PIPE_BUF (4,096) bytes whole, so the node's own log
// lines, written to the same stderr, never land inside an access line.
const (
	streamBatch = 4 << 10
	fileBatch   = 64 << 10
)

// reportEvery is how often, at most, the log reports dropped lines or a
// failing write.
const reportEvery = time.Minute

// Log is an access log. Log, Stats and Reopen are safe for concurrent use.
type Log struct {
	queue  chan Entry
	logger *slog.Logger
	gather time.Duration
	fullAt int // queue length that cuts the gathering short

	// idle is set by the writer before it waits for a line; the Log that
	// finds it set kicks the writer. So a line never waits for the next
	// one, and a busy edge wakes the writer once per batch, not per line.
	idle atomic.Bool
	kick chan struct{} // capacity 1
	full chan struct{} // capacity 1

	lines   atomic.Uint64 // written
	dropped atomic.Uint64 // queue full, or logged after Close
	failed  atomic.Uint64 // lost to a failed write

	closed    atomic.Bool
	stop      chan struct{}
	done      chan struct{}
	reopen    chan chan error
	closeOnce sync.Once

	// The writer goroutine's own.
	path  string // "" for a stream
	file  *os.File
	out   io.Writer
	json  bool
	line  []byte // the line being formatted
	batch batch
	// reported are the counts last reported, and when.
	reportedDrops, reportedFails uint64
	reportedAt                   time.Time
}

// Stats are a Log's counts since it was made.
type Stats struct {
	// Lines were written.
	Lines uint64
	// Dropped were not queued: the queue was full (the writer is behind:
	// a slow disk, a blocked pipe), or the log was closed.
	Dropped uint64
	// Failed were lost because a write failed (a full disk).
	Failed uint64
}

// New returns a Log that writes to w (os.Stderr, a pipe), in writes of at
// most 4 KiB of whole lines (longer lines alone). Only the log's writer
// goroutine writes to w. Reopen does nothing.
func New(w io.Writer, cfg Config) *Log {
	l := newLog(cfg, streamBatch)
	l.out = w
	go l.run()
	return l
}

// Values of Open's where other than a file's path.
const (
	Off    = "off"
	Stderr = "stderr"
)

// CheckFormat returns nil for a Config.Format a Log writes ("": the
// default, logging.Text, logging.JSON), else an error saying what to give.
func CheckFormat(f logging.Format) error {
	if f != "" && f != logging.Text && f != logging.JSON {
		return errors.New("give text or json")
	}
	return nil
}

// Open returns the Log where names: none (nil) for "" or Off, one writing
// to os.Stderr (New) for Stderr, else one appending to the file at that
// path (OpenFile). A nil *Log is no access log: LogFunc is nil, Stats
// zero, Reopen and Close do nothing.
func Open(where string, cfg Config) (*Log, error) {
	switch where {
	case "", Off:
		return nil, nil
	case Stderr:
		return New(os.Stderr, cfg), nil
	}
	return OpenFile(where, cfg)
}

// LogFunc is l.Log, or nil for a nil l (so that a caller such as the edge
// makes no entries without an access log).
func (l *Log) LogFunc() func(*Entry) {
	if l == nil {
		return nil
	}
	return l.Log
}

// OpenFile returns a Log that appends to the file at path, created with
// FileMode if it does not exist. Reopen opens the path again.
func OpenFile(path string, cfg Config) (*Log, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	l := newLog(cfg, fileBatch)
	l.path, l.file, l.out = path, f, f
	go l.run()
	return l, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, FileMode)
	if err != nil {
		return nil, fmt.Errorf("accesslog: %w", err)
	}
	return f, nil
}

func newLog(cfg Config, batchSize int) *Log {
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Format == "" {
		cfg.Format = logging.Text
	}
	if cfg.Gather <= 0 {
		cfg.Gather = DefaultGather
	}
	l := &Log{
		gather: cfg.Gather,
		fullAt: max(cfg.Buffer/4, 1),
		kick:   make(chan struct{}, 1),
		full:   make(chan struct{}, 1),
		queue:  make(chan Entry, cfg.Buffer),
		logger: cfg.Logger.With("component", "accesslog"),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		reopen: make(chan chan error),
	}
	l.batch = batch{limit: batchSize, flush: l.write}
	l.json = cfg.Format == logging.JSON
	return l
}

// Log queues e's line. It never waits: when the queue is full, the line is
// dropped and counted. e is copied; the caller may reuse it.
func (l *Log) Log(e *Entry) {
	if l.closed.Load() {
		l.dropped.Add(1)
		return
	}
	c := *e
	c.bound()
	select {
	case l.queue <- c:
	default:
		l.dropped.Add(1)
		return
	}
	if l.idle.Load() && l.idle.CompareAndSwap(true, false) {
		signal(l.kick)
	} else if len(l.queue) >= l.fullAt {
		signal(l.full)
	}
}

// signal wakes whoever waits on c, if it is not signalled already.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Stats returns the counts so far; zero for a nil l.
func (l *Log) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	return Stats{Lines: l.lines.Load(), Dropped: l.dropped.Load(), Failed: l.failed.Load()}
}

// Reopen writes what is queued to the file and opens its path again (after
// logrotate renamed it), closing the old file. On error the old file stays
// in use. A Log made by New, or a nil one, has nothing to reopen.
func (l *Log) Reopen() error {
	if l == nil || l.path == "" {
		return nil
	}
	reply := make(chan error, 1)
	select {
	case l.reopen <- reply:
		return <-reply
	case <-l.done:
		return errors.New("accesslog: closed")
	}
}

// Close writes the lines queued so far and closes the file. Lines logged
// afterwards are dropped. A nil l has nothing to close.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	var err error
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		close(l.stop)
		<-l.done
		if l.file != nil {
			err = l.file.Close()
		}
	})
	return err
}

// run is the writer goroutine: once a line is queued, it waits Gather (or
// until a quarter of the queue is used), then formats every queued entry
// into batches and writes them.
func (l *Log) run() {
	defer close(l.done)
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	for {
		// Idle only if the queue is empty after idle is set: a Log that
		// queued before saw idle unset, and its line is seen here.
		l.idle.Store(true)
		if len(l.queue) == 0 {
			select {
			case <-l.kick:
			case reply := <-l.reopen:
				l.idle.Store(false)
				l.drain()
				reply <- l.reopenFile()
				continue
			case <-l.stop:
				l.drain()
				return
			}
		}
		l.idle.Store(false)
		gather.Reset(l.gather)
		select {
		case <-gather.C:
		case <-l.full:
			gather.Stop()
		case reply := <-l.reopen:
			gather.Stop()
			l.drain()
			reply <- l.reopenFile()
		case <-l.stop:
			gather.Stop()
			l.drain()
			return
		}
		l.drain()
	}
}

// drain writes the entries queued now, and what is in the batch.
func (l *Log) drain() {
	for n := len(l.queue); n > 0; n-- {
		e := <-l.queue
		l.format(&e)
	}
	l.batch.flushNow()
	l.report()
}

func (l *Log) format(e *Entry) {
	l.line = appendLine(l.line[:0], e, l.json)
	l.batch.Write(l.line)
	if cap(l.line) > 64<<10 {
		l.line = nil // a huge line does not stay
	}
}

// write is the batch's flush: one write of whole lines.
func (l *Log) write(p []byte, lines int) {
	if _, err := l.out.Write(p); err != nil {
		l.failed.Add(uint64(lines))
		if time.Since(l.reportedAt) >= reportEvery {
			l.reportedAt = time.Now()
			l.logger.Error("access log write failed", "err", err, "lost_lines", lines)
		}
		return
	}
	l.lines.Add(uint64(lines))
}

// report logs how many lines were dropped or lost since the last report,
// at most once every reportEvery.
func (l *Log) report() {
	d, f := l.dropped.Load(), l.failed.Load()
	if d == l.reportedDrops && f == l.reportedFails || time.Since(l.reportedAt) < reportEvery {
		return
	}
	l.logger.Warn("access log lines lost", "dropped", d-l.reportedDrops, "failed", f-l.reportedFails,
		"hint", "the writer is behind (a slow disk or a blocked pipe) or failing")
	l.reportedDrops, l.reportedFails, l.reportedAt = d, f, time.Now()
}

func (l *Log) reopenFile() error {
	f, err := openFile(l.path)
	if err != nil {
		return err
	}
	old := l.file
	l.file, l.out = f, f
	return old.Close()
}

// batch collects whole lines and hands them to flush in one piece of at
// most limit bytes (a longer line alone). Each Write is one line.
type batch struct {
	limit int
	buf   []byte
	lines int
	flush func(p []byte, lines int)
}

func (b *batch) Write(p []byte) (int, error) {
	if len(b.buf)+len(p) > b.limit {
		b.flushNow()
	}
	b.buf = append(b.buf, p...)
	b.lines++
	return len(p), nil
}

func (b *batch) flushNow() {
	if b.lines == 0 {
		return
	}
	b.flush(b.buf, b.lines)
	b.buf, b.lines = b.buf[:0], 0
	if cap(b.buf) > 4*b.limit {
		b.buf = nil // a huge line does not stay
	}
}
