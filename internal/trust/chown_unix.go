//go:build unix

package trust

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// chownLike gives everything under dir the owner of home, when this
// process runs as root and home belongs to someone else (`sudo spine ca
// trust --home /home/alice`): the user's browser must be able to open its
// database.
func chownLike(home, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(home)
	if err != nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(st.Uid), int(st.Gid))
	})
}
