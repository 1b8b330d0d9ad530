package platform

import (
	"strings"
	"testing"
)

// The rules themselves are tested in package hostname; here, that a refusal
// reaches the API as a 400 invalid_hostname with hostname's message.
func TestNormalizeHostname(t *testing.T) {
	if got, err := NormalizeHostname(" Bücher.Example. "); err != nil || got != "xn--bcher-kva.example" {
		t.Fatalf("NormalizeHostname = %q, %v", got, err)
	}
	_, err := NormalizeHostname("a..b")
	var pe *Error
	if !asError(err, &pe) || pe.Kind != Invalid || pe.Code != "invalid_hostname" || pe.Message != `hostname "a..b" has an empty label (two dots in a row, or a leading dot)` {
		t.Fatalf("error %#v is not an Invalid invalid_hostname *Error with hostname's message", err)
	}
}

func TestUpstreamErrorsHidePasswords(t *testing.T) {
	p := New(nil, Options{})
	for _, raw := range []string{
		"http://user:hunter2@127.0.0.1:9000",      // credentials refused
		"http://user:hunter2@[::1:9000",           // does not parse
		"ftp://user:hunter2@127.0.0.1:9000/x?y=1", // wrong scheme
		"http://user:hunter2@127.0.0.1:9000/?q",   // query
	} {
		_, err := p.checkUpstream(raw)
		if err == nil {
			t.Fatalf("%q accepted", raw)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error repeats the password: %v", err)
		}
	}
}

// A webhook URL's port is stored as the number it is, and a spelling of
// localhost with a final dot is refused like localhost.
func TestWebhookURLHostAndPort(t *testing.T) {
	p := New(nil, Options{})
	if got, err := p.checkWebhookURL("https://Hooks.Example.com:0443/x"); err != nil || got != "https://hooks.example.com:443/x" {
		t.Errorf("checkWebhookURL = %q, %v, want https://hooks.example.com:443/x", got, err)
	}
	for _, raw := range []string{"http://localhost.:9/x", "http://App.Localhost.:9/x"} {
		var pe *Error
		if _, err := p.checkWebhookURL(raw); !asError(err, &pe) || pe.Code != "private_webhook_url" {
			t.Errorf("checkWebhookURL(%q) = %v, want private_webhook_url", raw, err)
		}
	}
}
