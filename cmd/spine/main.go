// Command spine is Spine's server and its command-line client.
//
//	spine up                      run the whole platform on this machine (SQLite, internal CA, *.localhost)
//	spine serve                   run a production node
//	spine service create NAME ... manage services through the API
//
// This package holds only flags and wiring; the parts live under internal/.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	err := newRoot().Execute()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	var exit *exitError
	if errors.As(err, &exit) {
		os.Exit(exit.code)
	}
	os.Exit(1)
}
