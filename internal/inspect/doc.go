// Package inspect connects to an HTTPS server as a client and explains,
// with the real values of that connection, each step of the handshake:
// DNS, TCP, the ClientHello and ServerHello as they went over the wire
// (a HelloRetryRequest, ECH), the certificate chain, its verification step
// by step, the key exchange, session resumption on a second connection and
// the HTTP answer, with the time each took. It is `spine inspect`.
//
// The handshake runs through crypto/tls with the defaults a current
// browser has (TLS 1.3 and 1.2, X25519MLKEM768 first); a wrapper around
// the TCP connection keeps the bytes each way (wire.go), which hello.go
// parses, so the report shows what was sent, not what was configured. The
// certificate is not checked by crypto/tls but by verify.go afterwards,
// step by step, so that a bad certificate is explained rather than only
// refused; no request is sent on a connection that fails that check.
//
// Package inspect is a client, and sees Spine only through the public
// client package (Config.Spine).
//
// Imports: never internal/store, internal/edge, internal/node, internal/api.
package inspect
