package browser

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node"
	"github.com/spine-platform/spine/internal/node/config"
)

// protoPage is a page that writes the protocol the browser loaded it with
// (Navigation Timing's nextHopProtocol) into itself.
const protoPage = `<!doctype html><html><body><p id="p">loading</p><script>
document.getElementById("p").textContent = "protocol=" + performance.getEntriesByType("navigation")[0].nextHopProtocol;
</script></body></html>`

// Chromium, with QUIC forced on for the test origin, loads a page of a
// Spine service over HTTP/3, trusting Spine's root from its NSS database
// (no certificate error ignored), and reports the protocol as h3.
func TestHTTP3InChromium(t *testing.T) {
	certutil := need(t, "certutil", "libnss3-tools")
	dir := t.TempDir()
	n, err := node.Start(context.Background(), config.Config{
		DataDir: filepath.Join(dir, "data"), Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
		Domain: "localhost", Version: "test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	root := filepath.Join(dir, "data", "ca", "root.pem")
	home := trustingHome(t, certutil, dir, root)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, protoPage)
	}), ReadHeaderTimeout: 10 * time.Second}
	go up.Serve(ln)
	defer up.Close()

	tok, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	c := client.New("http://"+n.APIAddr(), strings.TrimSpace(string(tok)))
	svc, err := c.CreateService(context.Background(), client.ServiceCreate{Name: "h3", Upstreams: []string{"http://" + ln.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rootPEM, _ := os.ReadFile(root)
	if err := c.WaitServing(wctx, svc, rootPEM, nil); err != nil {
		t.Fatal(err)
	}

	_, port, _ := net.SplitHostPort(n.HTTPSAddr())
	origin := "h3.localhost:" + port
	// The node listens on 127.0.0.1 only; Chromium resolves *.localhost
	// to ::1 as well, and a QUIC attempt there is refused. No certificate
	// error is ignored: Spine's root is trusted from the NSS database.
	dom := chromiumWith(t, home, "--enable-quic", "--origin-to-force-quic-on="+origin,
		"--host-resolver-rules=MAP h3.localhost 127.0.0.1", "--dump-dom", "https://"+origin+"/")
	if !strings.Contains(dom, "protocol=h3") {
		t.Fatalf("the page was not loaded over HTTP/3; Chromium showed:\n%s", dom)
	}
	// The same page without QUIC: the browser reports h2, so the check above can fail.
	if dom := chromium(t, home, "--dump-dom", "https://"+origin+"/"); !strings.Contains(dom, "protocol=h2") {
		t.Fatalf("without QUIC, Chromium showed:\n%s", dom)
	}
}
