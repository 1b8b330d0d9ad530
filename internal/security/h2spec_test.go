package security

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
)

const h2specInstall = "go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible"

// h2specExceptions are the h2spec cases the edge is allowed to fail, each
// with the reason and the RFC clause. Keys are the case names from the
// JUnit report ("5.1.2/1"). Empty: every case must pass.
var h2specExceptions = map[string]string{
	"http2/6.5.3/1": "RFC 9113 6.5.3 (process the values of a SETTINGS frame in order): net/http hangs up on a SETTINGS frame " +
		"that repeats an identifier (\"settings_big_or_dups\"), a deliberate defence against settings floods; no real client repeats one",
	"http2/8.1.2.2/1": "RFC 9113 8.2.2 (a request with a connection-specific header field is malformed: stream error " +
		"PROTOCOL_ERROR): net/http refuses the request with a 400 answer on the stream instead of RST_STREAM, and nothing " +
		"reaches an upstream (TestSmuggling, \"HTTP/2 request with connection-specific fields\")",
	"http2/8.1.2.2/2": "RFC 9113 8.2.2 (TE other than \"trailers\" is malformed): as 8.1.2.2/1, a 400 answer instead of " +
		"RST_STREAM, and nothing forwarded",
}

// TestH2Spec runs every h2spec case (HTTP/2, HPACK and generic, strict
// ones included) against the edge over TLS. The JUnit report is kept as an
// artefact.
func TestH2Spec(t *testing.T) {
	t.Parallel()
	bin := findTool(t, "h2spec", h2specInstall)
	s := startSpine(t, edge.Config{})
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
	// h2spec sends the host it dials as SNI and :authority, and
	// "localhost" is the one such name that resolves here without DNS.
	s.addService(t, s.admin, client.ServiceCreate{Name: "h2spec", Hosts: []string{"localhost"}, Upstreams: []string{up}})
	_, port, _ := net.SplitHostPort(s.n.HTTPSAddr())

	report := filepath.Join(t.TempDir(), "h2spec-junit.xml") // this run's own; copied to the artefacts
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--strict", "-t", "-k", "-h", "localhost", "-p", port, "-o", "3", "-j", report)
	out, err := cmd.CombinedOutput()
	os.WriteFile(filepath.Join(artefacts(t), "h2spec-output.txt"), out, 0o644)
	if ctx.Err() != nil {
		t.Fatalf("h2spec did not finish in 3 minutes:\n%s", tail(out, 3000))
	}
	data, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("h2spec wrote no report (%v; exit %v):\n%s", rerr, err, tail(out, 3000))
	}
	var suites struct {
		Suites []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name      string    `xml:"name,attr"`
				Package   string    `xml:"package,attr"`
				ClassName string    `xml:"classname,attr"`
				Failure   *struct{} `xml:"failure"`
				Error     *struct{} `xml:"error"`
				Skipped   *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	os.WriteFile(filepath.Join(artefacts(t), "h2spec-junit.xml"), data, 0o644)
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatalf("parsing the h2spec report: %v", err)
	}
	var passed, failed, skipped int
	var failures []string
	for _, su := range suites.Suites {
		for i, c := range su.Cases {
			id := c.Package + "/" + strconv.Itoa(i+1)
			switch {
			case c.Failure != nil || c.Error != nil:
				if reason, ok := h2specExceptions[id]; ok {
					t.Logf("allowed h2spec failure %s: %s", id, reason)
					skipped++
					continue
				}
				failed++
				failures = append(failures, id+" ("+su.Name+": "+c.ClassName+")")
			case c.Skipped != nil:
				skipped++
			default:
				passed++
			}
		}
	}
	sort.Strings(failures)
	reportf(t, "h2spec (strict, over TLS): %d passed, %d failed, %d skipped or excepted; report %s", passed, failed, skipped, filepath.Join(artefactDir(), "h2spec-junit.xml"))
	if passed == 0 {
		t.Fatalf("h2spec passed no case:\n%s", tail(out, 3000))
	}
	for _, f := range failures {
		t.Errorf("h2spec case failed: %s", f)
	}
	if failed > 0 {
		t.Logf("h2spec output (end):\n%s", tail(out, 6000))
	}
}

// findTool returns the path of an external tool from PATH or Go's bin
// folder, or fails the test with how to install it.
func findTool(t *testing.T, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	t.Fatalf("%s is not installed (looked in PATH and %s); install it with: %s (bash .ci/run does)", name, strings.Join(dirs, ", "), install)
	return ""
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return fmt.Sprintf("%s", b)
}
