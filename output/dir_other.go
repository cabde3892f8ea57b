//go:build !linux

package output

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
)

// resultDir is an open directory of result files, used through os.Root.
type resultDir struct {
	root  *os.Root
	group groupSync
}

func openResultDir(root *os.Root, rel string) (*resultDir, error) {
	sub, err := root.OpenRoot(rel)
	if err != nil {
		return nil, err
	}
	return &resultDir{root: sub}, nil
}

func (d *resultDir) close() error { return d.root.Close() }

// writeTemp creates a temporary file in d holding data, synced and closed, and returns its
// name. On error nothing is left behind.
func (d *resultDir) writeTemp(data []byte, step func(string) error) (_ string, err error) {
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
		return "", fmt.Errorf("cannot create a temporary file: %w", err)
	}
	open := true
	defer func() {
		if err != nil {
			if open {
				f.Close()
			}
			d.remove(name)
		}
	}()
	if err := step("write"); err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	if err := step("sync"); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := step("close"); err != nil {
		return "", err
	}
	open = false
	if err := f.Close(); err != nil {
		return "", err
	}
	return name, nil
}

func (d *resultDir) rename(from, to string) error { return d.root.Rename(from, to) }

func (d *resultDir) remove(name string) { d.root.Remove(name) }

// syncDir makes the renames done in d so far durable.
func (d *resultDir) syncDir() error {
	return d.group.sync(func() error { return syncDir(d.root, ".") })
}
