// Command upstream is the benchmark's plain HTTP/1.1 upstream: it answers
// every request with 200 and the body "hello, bench" (12 bytes), the same
// answer the servers give as their static answer, so the static and proxied
// figures differ only by the proxying.
//
//	upstream -addr 127.0.0.1:9000
//
// The harness runs it with GOMAXPROCS=1 on the load generator's core, so it
// never competes with the server under test.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"
)

var body = []byte("hello, bench")

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	flag.Parse()
	srv := &http.Server{
		Addr: *addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain"}
			h["Content-Length"] = []string{"12"}
			w.Write(body)
		}),
		ReadHeaderTimeout: 60 * time.Second,
		IdleTimeout:       10 * time.Minute,
		ErrorLog:          log.New(os.Stderr, "upstream: ", 0),
	}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}
