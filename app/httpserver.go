package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// httpShutdown bounds how long a stopping server waits for the requests in progress.
const httpShutdown = 5 * time.Second

// An httpServer serves a handler on a listener in a goroutine of its own, for run's metrics
// and serve's webhook alike, with the same timeouts and error log.
type httpServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	err  error // why Serve returned; read after done is closed
}

// startHTTP serves h on ln until Stop. The server owns ln from here on.
func startHTTP(ln net.Listener, h http.Handler, log *slog.Logger) *httpServer {
	s := &httpServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       time.Minute,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		s.err = s.srv.Serve(ln)
	}()
	return s
}

// Addr is the address the server listens on.
func (s *httpServer) Addr() string { return s.ln.Addr().String() }

// Done is closed when the server has stopped, by Stop or on its own.
func (s *httpServer) Done() <-chan struct{} { return s.done }

// Stop stops the server: it stops accepting, lets the requests in progress finish for up to
// httpShutdown, closes what is left and waits for the serving goroutine. It returns why the
// server stopped when that was not Stop. Stop may be called more than once.
func (s *httpServer) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), httpShutdown)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.done
	if errors.Is(s.err, http.ErrServerClosed) {
		return nil
	}
	return s.err
}
