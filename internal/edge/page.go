package edge

import (
	"html"
	"net/http"
	"strconv"
	"strings"

	"github.com/spine-platform/spine/internal/accesslog"
)

// page is a small answer the edge gives itself, in HTML for browsers and in
// plain text for everything else.
type page struct {
	title string // also the plain-text answer's first line
	text  string // one sentence, plain text
}

var (
	tooLargePage   = page{"Request body too large", "The request body is larger than Spine accepts."}
	badRequestPage = page{"Bad request", "The request body could not be read."}
	badTargetPage  = page{"Bad request", "The request's path or query holds a space or a control character."}
)

func notFoundPage(host string) page {
	return page{"Not found", "The host " + quoteHost(host) + " is not served by Spine."}
}

func misdirectedPage(host string) page {
	return page{"Misdirected request", "This connection was not opened for " + quoteHost(host) + "; open a new connection to it."}
}

func badGatewayPage(service string) page {
	return page{"Bad gateway", "The upstream of service " + quoteHost(service) + " is not answering."}
}

func suspendedPage(service string) page {
	return page{"Service suspended", "The service " + quoteHost(service) + " is suspended by the operator of this platform."}
}

// pageHead is the start of every HTML page: readable on any screen, no
// external resources, no script.
const pageHead = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">" +
	"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">" +
	"<style>body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1d2430;background:#f5f6f8}" +
	"main{max-width:36rem;margin:12vh auto 0;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 4px #0002}" +
	".code{margin:0;color:#8a93a3;font-weight:600}h1{margin:.2rem 0 1rem;font-size:1.6rem}" +
	"footer{text-align:center;color:#8a93a3;font-size:.85rem;margin-top:1rem}</style>"

// quoteHost bounds a client-supplied name before it is shown back.
func quoteHost(h string) string {
	if h == "" {
		h = "(none)"
	}
	if len(h) > 255 {
		h = h[:255] + "…"
	}
	return h
}

// writePage answers r with p: HTML if the client accepts it, plain text
// otherwise. hsts is the route's Strict-Transport-Security value, or nil.
func writePage(w http.ResponseWriter, r *http.Request, code int, hsts []string, p page) {
	h := w.Header()
	// Set by the handler already; again, as an upstream's 1xx before a
	// failure clears the answer's fields.
	h[accesslog.RequestIDHeader] = r.Header[accesslog.RequestIDHeader]
	if hsts != nil {
		h["Strict-Transport-Security"] = hsts
	}
	var body string
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		h.Set("Content-Type", "text/html; charset=utf-8")
		t := html.EscapeString(p.title)
		body = pageHead + "<title>" + strconv.Itoa(code) + " " + t + "</title></head><body><main><p class=\"code\">" +
			strconv.Itoa(code) + "</p><h1>" + t + "</h1><p>" + html.EscapeString(p.text) + "</p></main><footer>Spine</footer></body></html>\n"
	} else {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		body = strconv.Itoa(code) + " " + p.title + "\n" + p.text + "\n"
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body))
	}
}
