package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
)

// An Endpoint serves /metrics where it is told: on the API (its handler),
// nowhere, or on a listener of its own, which it shuts down.
func TestEndpoint(t *testing.T) {
	for where, want := range map[string]bool{OnAPI: true, Off: true, ":9180": true, "127.0.0.1:0": true, "nowhere": false, "": false, "a b:1": false} {
		if got := ValidWhere(where); got != want {
			t.Errorf("ValidWhere(%q) = %v, want %v", where, got, want)
		}
	}
	r := New(Sources{})
	onAPI, err := Listen(OnAPI)
	if err != nil || onAPI.APIHandler(r) == nil || onAPI.Addr() != "" {
		t.Fatalf("Listen(OnAPI) = %+v, %v; want the API's handler and no listener", onAPI, err)
	}
	off, err := Listen(Off)
	if err != nil || off.APIHandler(r) != nil || off.Addr() != "" {
		t.Fatalf("Listen(Off) = %+v, %v; want nothing served", off, err)
	}
	if err := off.Serve(r); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve without a listener: %v, want http.ErrServerClosed at once", err)
	}

	own, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if own.APIHandler(r) != nil {
		t.Error("an endpoint of its own also serves on the API")
	}
	served := make(chan error, 1)
	go func() { served <- own.Serve(r) }()
	resp, err := http.Get("http://" + own.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /metrics: %d, want 200", resp.StatusCode)
	}
	if _, err := Listen(own.Addr()); err == nil || !strings.Contains(err.Error(), "pick another address for the metrics") {
		t.Errorf("Listen on a taken address: %v, want a hint to pick another", err)
	}
	if err := own.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	if c, err := net.Dial("tcp", own.Addr()); err == nil {
		c.Close()
		t.Error("the listener is open after Shutdown")
	}
}
