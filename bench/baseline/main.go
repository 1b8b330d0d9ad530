// Command baseline is the bare-Go reference server of the benchmark: the
// standard library's crypto/tls, net/http and httputil.ReverseProxy and
// nothing else. It serves HTTPS (HTTP/2 and HTTP/1.1, TLS 1.2 and 1.3):
//
//	/        a static answer, "hello, bench"
//	/proxy*  proxied to -upstream over HTTP/1.1 keep-alive
//
//	baseline -addr 127.0.0.1:8443 -cert cert.pem -key key.pem -upstream http://127.0.0.1:9000 -procs 1
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"time"
)

var body = []byte("hello, bench")

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "HTTPS listen address")
	cert := flag.String("cert", "cert.pem", "certificate chain (PEM)")
	key := flag.String("key", "key.pem", "private key (PEM)")
	upstream := flag.String("upstream", "http://127.0.0.1:9000", "upstream of /proxy")
	procs := flag.Int("procs", 1, "GOMAXPROCS (0 keeps the runtime's choice)")
	idle := flag.Int("upstream-idle", 128, "idle upstream connections kept (http.Transport.MaxIdleConnsPerHost; the default 2 would reconnect under concurrency)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	if err := run(*addr, *cert, *key, *upstream, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(addr, certFile, keyFile, upstream string, idle int) error {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("loading the certificate: %w", err)
	}
	up, err := url.Parse(upstream)
	if err != nil {
		return fmt.Errorf("parsing -upstream: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = idle
	tr.MaxIdleConns = idle
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(up); r.Out.Host = r.In.Host },
		Transport: tr,
	}
	mux := http.NewServeMux()
	mux.Handle("/proxy", proxy)
	mux.Handle("/proxy/", proxy)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{"12"}
		w.Write(body)
	})
	srv := &http.Server{
		Addr:    addr,
		Handler: mux,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{pair},
			MinVersion:   tls.VersionTLS12,
			// Go's default curve list (X25519MLKEM768 first, then X25519,
			// P-256...) is kept: it is what a bare Go server offers.
		},
		// Long timeouts: the memory figure holds idle keep-alive
		// connections for tens of seconds.
		ReadHeaderTimeout: 5 * time.Minute,
		IdleTimeout:       10 * time.Minute,
		ErrorLog:          log.New(os.Stderr, "baseline: ", 0),
	}
	return srv.ListenAndServeTLS("", "")
}
