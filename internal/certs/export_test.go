package certs

import "context"

// WithCertificateLoad is withCertificateLoad, for the tests and benchmarks
// outside the package.
func WithCertificateLoad(ctx context.Context) context.Context { return withCertificateLoad(ctx) }
