// Package hostname is Spine's one definition of a host name: the form names
// are stored and routed in, the rules they must follow, wildcards, and the
// port numbers written next to them. Every layer (the CLI, the platform's
// rules, the certificate manager, the edge, the DNS server) uses it, so a
// name the API accepts is the name the edge looks up and the certificate
// manager asks a CA for.
//
//   - Normalize turns what a user typed into the stored form: lower case,
//     no trailing dot, IDNA names as punycode (UTS #46, non-transitional, as
//     browsers look names up), labels of 1 to 63 letters, digits and inner
//     hyphens, at most 253 characters in all. Check tells whether a name is
//     already in that form.
//   - Clean turns a Host header or a TLS server name into the form to look
//     it up by (no port, no brackets, no trailing dot, lower case), without
//     allocating for a name already in that form: it is on the request path.
//     Fold is the same for a name that holds no port.
//   - IsDNSName is the looser rule of DNS owner names, which may hold
//     underscores (_acme-challenge); ValidLabel is one hostname label.
//   - Wildcards ("*.example.com" covers one label under example.com) and
//     InDomain (a name is a domain or below it).
//   - ParsePort reads a port number.
//
// Imports: only the standard library, golang.org/x/net/idna.
package hostname
