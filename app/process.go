package app

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// JobIDEnv is the environment variable that holds the job id for an --exec command.
const JobIDEnv = "PALLETO_JOB_ID"

// runProcess runs argv with id appended, in a process group of its own so that a stop
// reaches everything it started. When ctx is cancelled the group gets SIGTERM, and SIGKILL
// killDelay later; the error is then ctx's.
func runProcess(ctx context.Context, argv []string, id string, killDelay time.Duration, log *slog.Logger) error {
	cmd := exec.Command(argv[0], append(argv[1:len(argv):len(argv)], id)...)
	cmd.Env = append(os.Environ(), JobIDEnv+"="+id)
	cmd.SysProcAttr = jobProcAttr()
	stdout, stderr := &lineLog{log: log, stream: "stdout"}, &lineLog{log: log, stream: "stderr"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Children that outlive the job and keep its output open must not hold the worker.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	pgid := cmd.Process.Pid
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-ctx.Done():
		log.Info("stopping job: SIGTERM to its process group")
		syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(killDelay)
		select {
		case <-waited:
		case <-t.C:
			log.Warn("job still running: SIGKILL to its process group", "after", killDelay)
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-waited
		}
		t.Stop()
		err = ctx.Err()
	}
	stdout.flush()
	stderr.flush()
	return err
}

// lineLog logs what a job writes, one log record per line.
type lineLog struct {
	log    *slog.Logger
	stream string
	mu     sync.Mutex
	buf    []byte
}

// maxLine splits lines longer than this into several records.
const maxLine = 64 << 10

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) >= maxLine {
				l.emit(l.buf[:maxLine])
				l.buf = l.buf[:copy(l.buf, l.buf[maxLine:])]
				continue
			}
			return len(p), nil
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[:copy(l.buf, l.buf[i+1:])]
	}
}

func (l *lineLog) emit(line []byte) {
	l.log.Info("job output", "stream", l.stream, "line", string(bytes.TrimSuffix(line, []byte("\r"))))
}

func (l *lineLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = l.buf[:0]
	}
}
