package serving

import (
	"crypto/sha256"
	"encoding/binary"
	"io"

	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

// WithUploaded folds the uploaded certificates (hostname, project, leaf
// SHA-256) into a read's fingerprint, so that an upload or a removal alone
// is applied. Without uploads the fingerprint is unchanged.
func WithUploaded(sum [sha256.Size]byte, ups []store.UploadedCert) [sha256.Size]byte {
	if len(ups) == 0 {
		return sum
	}
	h := sha256.New()
	h.Write(sum[:])
	var buf []byte
	for _, c := range ups {
		for _, s := range []string{c.Hostname, c.ProjectID, c.SHA256} {
			buf = binary.AppendUvarint(buf[:0], uint64(len(s)))
			h.Write(buf)
			io.WriteString(h, s)
		}
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Owners maps each routed hostname of want to the ID of the project it is
// routed to: whose uploaded certificate may be served for it. want is the
// few hostnames the uploaded certificates concern (certs.Uploaded.Concerns):
// a map of every routed hostname was 78 MB and hundreds of milliseconds of
// a node's sync at a million, for none when nothing is uploaded.
func (l *RouteList) Owners(want map[string]bool) map[string]string {
	owner := make(map[string]string, len(want))
	if len(want) == 0 {
		return owner
	}
	var y sched.Yielder
	for i := range l.svcs {
		y.Every(i)
		for _, h := range l.svcs[i].Hostnames {
			if want[h] {
				owner[h] = l.svcs[i].ProjectID
			}
		}
	}
	return owner
}
