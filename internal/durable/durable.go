// Package durable makes what a program creates in a file system last through a crash as the
// data written into it does. Syncing a file makes its content durable, not its name: a new
// file, or a new directory, is durable once the directory that holds it has been synced too.
package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// MkdirAll makes dir and its missing parents, as os.MkdirAll does, and makes each directory it
// made durable by syncing the directory that holds it. When a sync fails, what was made is
// removed again, so that the next attempt makes it, and syncs it, anew. (The one directory it
// syncs that it did not make may deny reading, which syncing needs; it is then left unsynced,
// as os.MkdirAll would leave it.)
func MkdirAll(dir string, perm fs.FileMode) (err error) {
	made := Missing(dir)
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			for _, d := range made {
				os.Remove(d)
			}
		}
	}()
	for i, d := range slices.Backward(made) {
		err := SyncDir(os.Open, filepath.Dir(d))
		if i == len(made)-1 && errors.Is(err, fs.ErrPermission) {
			continue // a directory we may write to but not read cannot be synced: as before
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Missing returns dir and those of its parents that do not exist, innermost first: what
// MkdirAll would make. A path that exists, or that cannot be looked at, ends the list.
func Missing(dir string) []string {
	var missing []string
	for d := filepath.Clean(dir); ; {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			return missing // there, or not ours to make: os.MkdirAll says which
		}
		missing = append(missing, d)
		up := filepath.Dir(d)
		if up == d {
			return missing
		}
		d = up
	}
}

// SyncDir syncs the entries of the directory that open opens at name: os.Open for a path, an
// os.Root's Open for a name under it. A variable, so that tests see which directories are
// synced, and can make a sync fail.
var SyncDir = func(open func(string) (*os.File, error), name string) error {
	d, err := open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
