package webhooks_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/webhooks"
)

// Signatures verify with the Standard Webhooks reference library, which
// Spine did not write; a changed byte, id or timestamp does not.
func TestSignVerifiesWithStandardWebhooks(t *testing.T) {
	secret := platform.NewWebhookSecret()
	if !strings.HasPrefix(secret, "whsec_") || len(secret) != len("whsec_")+44 {
		t.Fatalf("secret %q: want whsec_ and 32 bytes of base64", secret)
	}
	if platform.NewWebhookSecret() == secret {
		t.Fatal("two secrets are the same")
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"service.created","timestamp":"2026-01-01T00:00:00Z","data":{"id":1}}`)
	now := time.Now()
	sig, err := webhooks.Sign(secret, "msg_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	headers := func(id string, ts time.Time, sig string) http.Header {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
		h.Set("webhook-signature", sig)
		return h
	}
	if err := wh.Verify(body, headers("msg_1", now, sig)); err != nil {
		t.Fatalf("standardwebhooks refuses Spine's signature: %v", err)
	}
	// The library's own signature is Spine's, byte for byte.
	if want, _ := wh.Sign("msg_1", now, body); want != sig {
		t.Errorf("Sign = %q, the library signs %q", sig, want)
	}
	for name, h := range map[string]http.Header{
		"another id":        headers("msg_2", now, sig),
		"another timestamp": headers("msg_1", now.Add(time.Second), sig),
	} {
		if err := wh.Verify(body, h); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if err := wh.Verify(append([]byte(nil), append(body[:len(body)-1], ' ', '}')...), headers("msg_1", now, sig)); err == nil {
		t.Error("a changed body verified")
	}
	if _, err := webhooks.Sign("whsec_not base64!", "m", now, body); err == nil || strings.Contains(err.Error(), "not base64!") {
		t.Errorf("a bad secret: %v (must fail without showing it)", err)
	}
}
