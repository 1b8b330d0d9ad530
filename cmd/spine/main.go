// Command spine is Spine's server and its command-line client.
//
//	spine up                      run the whole platform on this machine (SQLite, internal CA, *.localhost)
//	spine serve                   run a production node
//	spine service create NAME ... manage services through the API
//
// This package holds only flags and wiring; the parts live under internal/.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
