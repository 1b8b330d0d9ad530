package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/platform"
)

// secretKey returns the HMAC key of a secret: the base64 after "whsec_".
func secretKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, platform.WebhookSecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, errors.New("webhooks: the signing secret is not whsec_ followed by base64") // never the secret itself
	}
	return key, nil
}

// Sign returns the webhook-signature header of a message: "v1," and the
// base64 HMAC-SHA256, keyed by the secret, of "msgID.timestamp.body" with
// the timestamp in Unix seconds.
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.", msgID, strconv.FormatInt(ts.Unix(), 10))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}
