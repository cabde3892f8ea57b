//go:build !linux

package output

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/palleto/palleto/internal/durable"
)

// resultDir is an open directory of result files, used through os.Root.
type resultDir struct {
	root *os.Root
}

func openResultDir(root *os.Root, rel string) (*resultDir, error) {
	sub, err := root.OpenRoot(rel)
	if err != nil {
		return nil, err
	}
	return &resultDir{root: sub}, nil
}

func (d *resultDir) close() error { return d.root.Close() }

// tempFile is a temporary result file, written and still open so that it can be synced.
type tempFile struct {
	name string
	f    *os.File
}

// writeTemp creates a temporary file in d holding data, and returns it open. On error nothing
// is left behind.
func (d *resultDir) writeTemp(data []byte, step func(string) error) (_ tempFile, err error) {
	var name string
	var f *os.File
	for range 10000 {
		name = tempPrefix + strconv.FormatUint(rand.Uint64(), 36) + ".tmp"
		f, err = d.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return tempFile{}, fmt.Errorf("cannot create a temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			d.remove(name)
		}
	}()
	if err := step("write"); err != nil {
		return tempFile{}, err
	}
	if _, err := f.Write(data); err != nil {
		return tempFile{}, err
	}
	return tempFile{name: name, f: f}, nil
}

// syncItem is the file's data, to be made durable.
func (t tempFile) syncItem() commitItem { return commitItem{key: t.f, sync: t.f.Sync} }

func (t tempFile) close() error { return t.f.Close() }

func (d *resultDir) rename(from, to string) error { return d.root.Rename(from, to) }

func (d *resultDir) remove(name string) { d.root.Remove(name) }

// syncItem is the directory's entries, to be made durable.
func (d *resultDir) syncItem() commitItem {
	return commitItem{key: d, sync: func() error { return durable.SyncDir(d.root.Open, ".") }}
}

// wholeSync returns nil: only Linux syncs a whole file system with a call that reports
// write errors.
func wholeSync(*os.File) func() error { return nil }
