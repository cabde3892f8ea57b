package output

import (
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
)

// resultDir is an open directory of result files. On Linux its files are created, written,
// synced and renamed with the directory's descriptor and raw system calls: an *os.File per
// result costs four fcntl and an epoll_ctl besides the open, and reopening the directory by
// path costs an openat per path element. Names are single path elements (escaped, without a
// separator) and are opened with O_NOFOLLOW, so nothing escapes the directory, which was
// itself opened through the Writer's os.Root.
type resultDir struct {
	root  *os.Root
	f     *os.File // held open for fd
	fd    int
	group groupSync
}

func openResultDir(root *os.Root, rel string) (*resultDir, error) {
	sub, err := root.OpenRoot(rel)
	if err != nil {
		return nil, err
	}
	f, err := sub.Open(".")
	if err != nil {
		sub.Close()
		return nil, err
	}
	return &resultDir{root: sub, f: f, fd: int(f.Fd())}, nil
}

func (d *resultDir) close() error {
	err := d.f.Close()
	if rerr := d.root.Close(); err == nil {
		err = rerr
	}
	return err
}

// writeTemp creates a temporary file in d holding data, synced and closed, and returns its
// name. On error nothing is left behind.
func (d *resultDir) writeTemp(data []byte, step func(string) error) (_ string, err error) {
	var name string
	fd := -1
	for range 10000 {
		name = tempPrefix + strconv.FormatUint(rand.Uint64(), 36) + ".tmp"
		fd, err = syscall.Openat(d.fd, name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
		if !errors.Is(err, syscall.EEXIST) && !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return "", &os.PathError{Op: "create", Path: name, Err: err}
	}
	open := true
	defer func() {
		if err != nil {
			if open {
				syscall.Close(fd)
			}
			d.remove(name)
		}
	}()
	if err := step("write"); err != nil {
		return "", err
	}
	for rest := data; len(rest) > 0; {
		n, err := syscall.Write(fd, rest)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return "", &os.PathError{Op: "write", Path: name, Err: err}
		}
		rest = rest[n:]
	}
	if err := step("sync"); err != nil {
		return "", err
	}
	if err := fsync(fd); err != nil {
		return "", &os.PathError{Op: "sync", Path: name, Err: err}
	}
	if err := step("close"); err != nil {
		return "", err
	}
	open = false
	if err := syscall.Close(fd); err != nil {
		return "", &os.PathError{Op: "close", Path: name, Err: err}
	}
	return name, nil
}

func (d *resultDir) rename(from, to string) error {
	if err := syscall.Renameat(d.fd, from, d.fd, to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

func (d *resultDir) remove(name string) {
	syscall.Unlinkat(d.fd, name)
}

// syncDir makes the renames done in d so far durable.
func (d *resultDir) syncDir() error {
	return d.group.sync(func() error {
		if err := fsync(d.fd); err != nil {
			return &os.PathError{Op: "sync", Path: ".", Err: err}
		}
		return nil
	})
}

func fsync(fd int) error {
	for {
		err := syscall.Fsync(fd)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
