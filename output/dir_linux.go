package output

import (
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// resultDir is an open directory of result files. On Linux its files are created, written,
// synced and renamed with the directory's descriptor and raw system calls: an *os.File per
// result costs four fcntl and an epoll_ctl besides the open, and reopening the directory by
// path costs an openat per path element. Names are single path elements (escaped, without a
// separator) and are opened with O_NOFOLLOW, so nothing escapes the directory, which was
// itself opened through the Writer's os.Root.
type resultDir struct {
	root *os.Root
	f    *os.File // held open for fd
	fd   int
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

// tempFile is a temporary result file, written and still open so that it can be synced.
type tempFile struct {
	name string
	fd   int
}

// writeTemp creates a temporary file in d holding data, and returns it open. On error nothing
// is left behind.
func (d *resultDir) writeTemp(data []byte, step func(string) error) (_ tempFile, err error) {
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
		return tempFile{}, &os.PathError{Op: "create", Path: name, Err: err}
	}
	t := tempFile{name: name, fd: fd}
	defer func() {
		if err != nil {
			t.close()
			d.remove(name)
		}
	}()
	if err := step("write"); err != nil {
		return tempFile{}, err
	}
	for rest := data; len(rest) > 0; {
		n, err := syscall.Write(fd, rest)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return tempFile{}, &os.PathError{Op: "write", Path: name, Err: err}
		}
		rest = rest[n:]
	}
	return t, nil
}

// syncItem is the file's data, to be made durable.
func (t tempFile) syncItem() commitItem {
	return commitItem{key: t.fd, sync: func() error {
		if err := fsync(t.fd); err != nil {
			return &os.PathError{Op: "sync", Path: t.name, Err: err}
		}
		return nil
	}}
}

func (t tempFile) close() error {
	if err := syscall.Close(t.fd); err != nil {
		return &os.PathError{Op: "close", Path: t.name, Err: err}
	}
	return nil
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

// syncItem is the directory's entries, to be made durable.
func (d *resultDir) syncItem() commitItem {
	return commitItem{key: d, sync: func() error {
		if err := fsync(d.fd); err != nil {
			return &os.PathError{Op: "sync", Path: ".", Err: err}
		}
		return nil
	}}
}

// wholeSync returns a function that syncs the whole file system that holds dir, with syncfs,
// or nil where syncfs does not report write errors (Linux before 5.8): there, a result could
// be reported written although its data never reached the disk.
func wholeSync(dir *os.File) func() error {
	if !kernelAtLeast(5, 8) {
		return nil
	}
	rc, err := dir.SyscallConn()
	if err != nil {
		return nil
	}
	return func() error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			for {
				serr = unix.Syncfs(int(fd))
				if !errors.Is(serr, unix.EINTR) {
					return
				}
			}
		}); err != nil {
			return err
		}
		switch {
		case serr == nil:
			return nil
		case errors.Is(serr, unix.ENOSYS), errors.Is(serr, unix.EPERM), errors.Is(serr, unix.EACCES):
			return errNoWholeSync
		}
		return &os.PathError{Op: "syncfs", Path: dir.Name(), Err: serr}
	}
}

// kernelAtLeast reports whether the running Linux kernel's version is major.minor or later.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return releaseAtLeast(unix.ByteSliceToString(u.Release[:]), major, minor)
}

func fsync(fd int) error {
	for {
		err := syscall.Fsync(fd)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
