package accesslog

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/logging"
)

func sample() Entry {
	return Entry{
		Time:             time.Date(2026, 12, 4, 12, 0, 0, 123456000, time.UTC),
		RequestID:        "0123456789abcdef0123456789abcdef",
		Project:          "acme",
		Service:          "web",
		Host:             "app.example.com",
		Method:           "POST",
		Target:           "/cart/add?item=42&token=s3cret&=x&flag",
		Proto:            "HTTP/2.0",
		Status:           201,
		BytesIn:          17,
		BytesOut:         2048,
		Duration:         1234567 * time.Nanosecond,
		Upstream:         "http://10.0.0.5:8080",
		UpstreamDuration: 987654 * time.Nanosecond,
		Client:           "203.0.113.9:51234",
		TLSVersion:       tls.VersionTLS13,
		TLSGroup:         tls.X25519MLKEM768,
		TLSResumed:       true,
		UserAgent:        "curl/8.5.0",
	}
}

// closedLog writes entries through a Log to a buffer and returns the output.
func closedLog(t *testing.T, format logging.Format, entries ...Entry) string {
	t.Helper()
	var buf syncBuffer
	l := New(&buf, Config{Format: format})
	for i := range entries {
		l.Log(&entries[i])
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Lines != uint64(len(entries)) || s.Dropped != 0 {
		t.Errorf("stats %+v, want %d lines", s, len(entries))
	}
	return buf.String()
}

func TestJSONLine(t *testing.T) {
	out := closedLog(t, logging.JSON, sample())
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	want := map[string]any{
		"time": "2026-12-04T12:00:00.123456Z", "level": "INFO", "msg": "access",
		"request_id": "0123456789abcdef0123456789abcdef", "project": "acme", "service": "web",
		"host": "app.example.com", "method": "POST", "path": "/cart/add", "query": "item&token&flag",
		"proto": "HTTP/2.0", "status": 201.0, "bytes_in": 17.0, "bytes_out": 2048.0,
		"duration_us": 1234.0, "upstream": "http://10.0.0.5:8080", "upstream_duration_us": 987.0,
		"client": "203.0.113.9:51234", "tls_version": "TLS 1.3", "tls_group": "X25519MLKEM768",
		"tls_resumed": true, "user_agent": "curl/8.5.0",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("%d fields, want %d: %s", len(m), len(want), out)
	}
	if strings.Contains(out, "s3cret") || strings.Contains(out, "42") {
		t.Errorf("a query value was written: %s", out)
	}
}

func TestTextLineAndOptionalFields(t *testing.T) {
	e := Entry{Time: time.Unix(0, 0).UTC(), RequestID: "r1", Host: "nowhere.test", Method: "GET", Target: "/",
		Proto: "HTTP/1.1", Status: 308, Client: "127.0.0.1:1"}
	out := closedLog(t, logging.Text, e)
	want := `time=1970-01-01T00:00:00.000Z level=INFO msg=access request_id=r1 host=nowhere.test method=GET path=/ ` +
		`proto=HTTP/1.1 status=308 bytes_in=0 bytes_out=0 duration_us=0 client=127.0.0.1:1` + "\n"
	if out != want {
		t.Errorf("got  %q\nwant %q", out, want)
	}
	e.ClientCertVerified, e.ClientCert = "success", "CN=client.example"
	if out := closedLog(t, logging.Text, e); !strings.Contains(out, `client_cert="CN=client.example"`) {
		t.Errorf("client certificate not written: %q", out)
	}
}

func TestBounds(t *testing.T) {
	e := sample()
	e.Host = strings.Repeat("h", 1000)
	e.Method = strings.Repeat("M", 100)
	e.Target = "/" + strings.Repeat("p", 10000) + "?" + strings.Repeat("q", 10000) + "=v"
	e.UserAgent = strings.Repeat("u", 10000)
	out := closedLog(t, logging.JSON, e)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	for k, n := range map[string]int{"host": maxHost, "method": maxMethod, "path": maxPath, "user_agent": maxUserAgent} {
		if got := len(m[k].(string)); got != n {
			t.Errorf("%s: %d bytes, want %d", k, got, n)
		}
	}
	if q := m["query"]; q != nil && len(q.(string)) > maxQuery {
		t.Errorf("query: %d bytes", len(q.(string)))
	}
}

func TestQueryNames(t *testing.T) {
	for in, want := range map[string]string{
		"a=1&b=2":           "a&b",
		"token=s3cret":      "token",
		"flag&x=&=nameless": "flag&x",
		"a%20b=c":           "a%20b",
		"&&&":               "",
	} {
		if got := queryNames(in); got != want {
			t.Errorf("queryNames(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidRequestID(t *testing.T) {
	for _, id := range []string{"a", "0123456789abcdef0123456789abcdef", "f47ac10b-58cc-4372-a567-0e02b2c3d479",
		"01ARZ3NDEKTSV4RRFFQ69G5FAV", "YWJj+ZA==x_y.z:1", strings.Repeat("x", MaxRequestIDLen)} {
		if !ValidRequestID(id) {
			t.Errorf("%q refused", id)
		}
	}
	for _, id := range []string{"", strings.Repeat("x", MaxRequestIDLen+1), "a b", "a\tb", "a\r\nb", "a\x00", `"`,
		"%0d%0a", "é", "a;b", "../../etc/passwd", "a/b", "<script>", "a\\b", "{}"} {
		if ValidRequestID(id) {
			t.Errorf("%q kept", id)
		}
	}
}

func TestNewRequestID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewRequestID()
		if len(id) != 32 || !ValidRequestID(id) || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("%q is not 32 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("%q made twice", id)
		}
		seen[id] = true
	}
}

// blockedWriter blocks every Write until release is closed.
type blockedWriter struct {
	release chan struct{}
	syncBuffer
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.syncBuffer.Write(p)
}

// TestLogNeverWaits logs into a writer that blocks: Log returns every
// time, the lines beyond the queue are dropped and counted, and once the
// writer moves again, each line was written or dropped.
func TestLogNeverWaits(t *testing.T) {
	w := &blockedWriter{release: make(chan struct{})}
	l := New(w, Config{Buffer: 4})
	const n = 1000
	e := sample()
	for range n {
		l.Log(&e) // a Log that waited would hang the test here
	}
	if s := l.Stats(); s.Dropped == 0 || s.Lines != 0 {
		t.Errorf("stats %+v with the writer blocked", s)
	}
	close(w.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s := l.Stats()
	if s.Lines+s.Dropped != n || s.Lines == 0 {
		t.Errorf("stats %+v: want lines + dropped = %d", s, n)
	}
	if got := strings.Count(w.String(), "\n"); uint64(got) != s.Lines {
		t.Errorf("%d lines written, stats say %d", got, s.Lines)
	}
	l.Log(&e)
	if l.Stats().Dropped != s.Dropped+1 {
		t.Error("a line logged after Close was not counted as dropped")
	}
}

// TestBatchesWholeLines checks that no write to a stream holds a part of a
// line, and none more than 4 KiB unless it is one line.
func TestBatchesWholeLines(t *testing.T) {
	w := &recordingWriter{}
	l := New(w, Config{Buffer: 10000})
	e := sample()
	for range 500 {
		l.Log(&e)
	}
	long := sample()
	long.UserAgent = ""
	long.Target = "/" + strings.Repeat("x", maxPath)
	l.Log(&long)
	l.Close()
	for _, p := range w.writes {
		if !bytes.HasSuffix(p, []byte("\n")) || (len(p) > streamBatch && bytes.Count(p, []byte("\n")) > 1) {
			t.Errorf("write of %d bytes, %d lines", len(p), bytes.Count(p, []byte("\n")))
		}
	}
}

type recordingWriter struct{ writes [][]byte }

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

// TestFileAppendModeReopen checks the file's mode, that it is appended to,
// and that Reopen follows a rename (logrotate's create mode).
func TestFileAppendModeReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	l, err := OpenFile(path, Config{Format: logging.JSON})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// FileMode less the umask: never more than 0640, always 0600.
	if m := fi.Mode().Perm(); m&^FileMode != 0 || m&0o600 != 0o600 {
		t.Errorf("mode %v, want %v", m, os.FileMode(FileMode))
	}
	e := sample()
	e.RequestID = "before-rotation"
	l.Log(&e)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil { // writes the queued line to the renamed file first
		t.Fatal(err)
	}
	e.RequestID = "after-rotation"
	l.Log(&e)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "before-rotation") || strings.Contains(string(old), "after-rotation") {
		t.Errorf("rotated file: %q", old)
	}
	if !strings.Contains(string(cur), "after-rotation") || strings.Count(string(cur), "\n") != 1 {
		t.Errorf("new file: %q", cur)
	}

	// Appending: a second log on the same path keeps the first line.
	l2, err := OpenFile(path, Config{Format: logging.JSON})
	if err != nil {
		t.Fatal(err)
	}
	l2.Log(&e)
	l2.Close()
	if cur, _ := os.ReadFile(path); strings.Count(string(cur), "\n") != 2 {
		t.Errorf("not appended: %q", cur)
	}
	if _, err := OpenFile(filepath.Join(dir, "missing", "access.log"), Config{}); err == nil {
		t.Error("a file in a missing folder was opened")
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Open: "" and "off" are no log, whose methods do nothing; a path is a
// file appended to; a path that cannot be opened is an error.
func TestOpen(t *testing.T) {
	for _, where := range []string{"", Off} {
		l, err := Open(where, Config{})
		if l != nil || err != nil {
			t.Fatalf("Open(%q) = %v, %v, want no log", where, l, err)
		}
		if l.LogFunc() != nil || l.Stats() != (Stats{}) || l.Reopen() != nil || l.Close() != nil {
			t.Errorf("Open(%q): a nil log's methods do something", where)
		}
	}
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := Open(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	e := sample()
	l.LogFunc()(&e)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), e.RequestID) || l.Stats().Lines != 1 {
		t.Errorf("file %q, stats %+v, want the line", b, l.Stats())
	}
	if _, err := Open(filepath.Join(path, "not-a-folder"), Config{}); err == nil {
		t.Error("a file under a file was opened")
	}
}
