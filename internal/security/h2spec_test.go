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
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
)

const h2specInstall = "go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible"

// h2specExceptions are the h2spec cases that the edge is allowed not to
// pass, each with the outcome it has ("failed" or "skipped"), the reason
// and the RFC clause. Keys are the case names from the JUnit report: the
// suite's package and the case's place in it ("http2/5.1.2/1"). Every
// other case must pass; a case that h2spec skips is not a pass. A listed
// case whose outcome changes (it now passes, say) fails the test too, so
// that the list stays true.
var h2specExceptions = map[string]struct{ outcome, reason string }{
	"http2/6.5.3/1": {"failed", "RFC 9113 6.5.3 (process the values of a SETTINGS frame in order): net/http hangs up on a SETTINGS frame " +
		"that repeats an identifier (\"settings_big_or_dups\"), a deliberate defence against settings floods; no real client repeats one"},
	"http2/8.1.2.2/1": {"failed", "RFC 9113 8.2.2 (a request with a connection-specific header field is malformed: stream error " +
		"PROTOCOL_ERROR): net/http refuses the request with a 400 answer on the stream instead of RST_STREAM, and nothing " +
		"reaches an upstream (TestSmuggling, \"HTTP/2 request with connection-specific fields\")"},
	"http2/8.1.2.2/2": {"failed", "RFC 9113 8.2.2 (TE other than \"trailers\" is malformed): as 8.1.2.2/1, a 400 answer instead of " +
		"RST_STREAM, and nothing forwarded"},
}

// TestH2Spec runs every h2spec case (HTTP/2, HPACK and generic, strict
// ones included) against the edge over TLS. The JUnit report is kept as an
// artefact.
func TestH2Spec(t *testing.T) {
	t.Parallel()
	bin := findTool(t, "h2spec", h2specInstall)
	s := startSpine(t, edge.Config{})
	// h2spec skips the flow-control cases (6.9.1, 6.9.2) when the answer
	// to GET / has less data than they need to split (5 bytes at most).
	body := strings.Repeat("h2spec flow-control body ", 8)
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, body)
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
	var passed, excepted int
	var problems []string
	seen := map[string]string{} // excepted case → its outcome
	for _, su := range suites.Suites {
		for i, c := range su.Cases {
			id := c.Package + "/" + strconv.Itoa(i+1)
			outcome := "passed"
			switch {
			case c.Failure != nil || c.Error != nil:
				outcome = "failed"
			case c.Skipped != nil:
				outcome = "skipped"
			}
			ex, listed := h2specExceptions[id]
			if listed {
				seen[id] = outcome
			}
			switch {
			case listed && outcome == ex.outcome:
				excepted++
				reportf(t, "h2spec %s %s (%s): %s", id, outcome, c.ClassName, ex.reason)
			case listed:
				problems = append(problems, fmt.Sprintf("stale exception %s (%s: %s): listed as %s, now %s; update h2specExceptions",
					id, su.Name, c.ClassName, ex.outcome, outcome))
			case outcome == "passed":
				passed++
			default:
				problems = append(problems, fmt.Sprintf("%s %s (%s: %s)", id, outcome, su.Name, c.ClassName))
			}
		}
	}
	// The JUnit report leaves out a case that did not run at all; h2spec's
	// own summary line counts every case.
	total := 0
	for _, su := range suites.Suites {
		total += len(su.Cases)
	}
	if m := regexp.MustCompile(`(?m)^(\d+) tests, \d+ passed, \d+ skipped, \d+ failed`).FindSubmatch(out); m == nil {
		problems = append(problems, "h2spec printed no summary line")
	} else if n, _ := strconv.Atoi(string(m[1])); n != total {
		problems = append(problems, fmt.Sprintf("h2spec counted %d cases, its report holds %d", n, total))
	}
	for id, ex := range h2specExceptions {
		if _, ok := seen[id]; !ok {
			problems = append(problems, fmt.Sprintf("stale exception %s (listed as %s): h2spec ran no such case", id, ex.outcome))
		}
	}
	sort.Strings(problems)
	reportf(t, "h2spec (strict, over TLS): %d passed, %d excepted, %d not passed; report %s", passed, excepted, len(problems), filepath.Join(artefactDir(), "h2spec-junit.xml"))
	if passed == 0 {
		t.Fatalf("h2spec passed no case:\n%s", tail(out, 3000))
	}
	for _, p := range problems {
		t.Errorf("h2spec: %s", p)
	}
	if len(problems) > 0 {
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
