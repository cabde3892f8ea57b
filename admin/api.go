package admin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/palleto/palleto/jobs"
)

// Status is the answer of GET /api/status.
type Status struct {
	Mode          string    `json:"mode"`
	Title         string    `json:"title,omitempty"`
	Started       time.Time `json:"started"`
	Now           time.Time `json:"now"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Healthy       bool      `json:"healthy"`
	HealthReason  string    `json:"health_reason,omitempty"`
	Ready         bool      `json:"ready"`
	ReadyReason   string    `json:"ready_reason,omitempty"`
	Failures      int64     `json:"failures_total"`
	Manage        bool      `json:"manage_jobs"` // jobs can be listed and changed
	// JobsUnlisted says why a pool's jobs cannot be listed (a pool on SQS).
	JobsUnlisted string `json:"jobs_unlisted,omitempty"`
}

// StageStatus is a stage in GET /api/stages: its counts and its rates over the last five
// seconds.
type StageStatus struct {
	StageCounts
	Rate         float64 `json:"rate"`          // items done a second
	FailRate     float64 `json:"fail_rate"`     // items failed a second
	ReceivedRate float64 `json:"received_rate"` // sources: items received a second
	BusyPercent  float64 `json:"busy_percent"`  // share of the workers' time in the handler
}

// QueueStatus is the answer of GET /api/queue.
type QueueStatus struct {
	Stats QueueStats `json:"stats"`
	// Rates over the last five seconds, a second.
	ReceivedRate  float64 `json:"received_rate"`
	DeletedRate   float64 `json:"deleted_rate"`
	ReceiveRate   float64 `json:"receive_rate"`       // ReceiveMessage requests a second
	EmptyRate     float64 `json:"empty_receive_rate"` // of them, empty ones a second
	RequestsPerMs float64 `json:"requests_per_message"`
	// Depth is the latest approximate counts (read every few seconds), DepthError why
	// they could not be read.
	Depth      *QueueDepth `json:"depth,omitempty"`
	DepthError string      `json:"depth_error,omitempty"`
}

// FailureList is the answer of GET /api/failures.
type FailureList struct {
	Total    int64     `json:"total"`
	Failures []Failure `json:"failures"`
}

// Snapshot is the answer of GET /api/snapshot: what the page needs each second.
type Snapshot struct {
	Status   Status        `json:"status"`
	Stages   []StageStatus `json:"stages"`
	Queue    *QueueStatus  `json:"queue,omitempty"`
	Failures FailureList   `json:"failures"`
	Jobs     *jobs.Counts  `json:"jobs,omitempty"`
	Series   Series        `json:"series"`
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	since, ok := sinceParam(w, r)
	if !ok {
		return
	}
	snap := Snapshot{Status: s.status(), Stages: s.stages(), Queue: s.queue(), Failures: s.failures(), Series: s.hist.since(since)}
	s.mu.Lock()
	snap.Jobs = s.jobsN
	s.mu.Unlock()
	if s.cfg.Jobs != nil && s.cfg.Counts != nil { // the embedded queue counts in memory: fresh
		if c, err := s.cfg.Counts(r.Context()); err == nil {
			snap.Jobs = &c
		}
	}
	writeJSON(w, snap)
}

func (s *Server) status() Status {
	now := time.Now()
	st := Status{Mode: s.cfg.Mode, Title: s.cfg.Title, Started: s.started, Now: now,
		UptimeSeconds: now.Sub(s.started).Seconds(), Manage: s.cfg.Jobs != nil, JobsUnlisted: s.unlisted()}
	st.Healthy, st.HealthReason = s.health()
	st.Ready, st.ReadyReason = s.ready()
	if s.cfg.Failures != nil {
		_, st.Failures = s.cfg.Failures.List()
	}
	return st
}

// rateWindow is how many samples the rates of the API average.
const rateWindow = 5

func (s *Server) stages() []StageStatus {
	if s.cfg.Stages == nil {
		return []StageStatus{}
	}
	counts := s.cfg.Stages.Snapshot()
	out := make([]StageStatus, len(counts))
	for i, c := range counts {
		p := "stage:" + c.Name + ":"
		out[i] = StageStatus{StageCounts: c,
			Rate:         s.hist.mean(p+"done", rateWindow),
			FailRate:     s.hist.mean(p+"failed", rateWindow),
			ReceivedRate: s.hist.mean(p+"received", rateWindow),
			BusyPercent:  s.hist.mean(p+"busy", rateWindow),
		}
	}
	return out
}

func (s *Server) queue() *QueueStatus {
	if s.cfg.Queue == nil {
		return nil
	}
	st := s.cfg.Queue.QueueStats()
	q := &QueueStatus{Stats: st,
		ReceivedRate: s.hist.mean("queue:received", rateWindow),
		DeletedRate:  s.hist.mean("queue:deleted", rateWindow),
		ReceiveRate:  s.hist.mean("queue:receives", rateWindow),
		EmptyRate:    s.hist.mean("queue:empty", rateWindow),
	}
	if st.Received > 0 {
		q.RequestsPerMs = float64(st.Requests) / float64(st.Received)
	}
	s.mu.Lock()
	q.Depth, q.DepthError = s.depth, s.dErr
	s.mu.Unlock()
	return q
}

func (s *Server) failures() FailureList {
	if s.cfg.Failures == nil {
		return FailureList{Failures: []Failure{}}
	}
	l, n := s.cfg.Failures.List()
	return FailureList{Total: n, Failures: l}
}

// JobList is the answer of GET /api/jobs.
type JobList struct {
	Counts jobs.Counts `json:"counts"`
	State  jobs.State  `json:"state,omitempty"`
	Jobs   []jobs.Info `json:"jobs"`
	// Unlisted, when set, says why Jobs is empty whatever the counts (a pool on SQS).
	Unlisted string `json:"unlisted,omitempty"`
}

// unlisted says why the jobs cannot be listed, for a server with no job queue of its own.
func (s *Server) unlisted() string {
	if s.cfg.Jobs != nil {
		return ""
	}
	return s.cfg.Unlisted
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	var st jobs.State
	if v := r.URL.Query().Get("state"); v != "" {
		var err error
		if st, err = jobs.ParseState(v); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	var out JobList
	if s.cfg.Counts != nil {
		c, err := s.cfg.Counts(r.Context())
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "cannot count jobs now: "+err.Error())
			return
		}
		out.Counts = c
	}
	out.State, out.Unlisted = st, s.unlisted()
	if s.cfg.Jobs != nil {
		out.Jobs = s.cfg.Jobs.List(st)
	}
	if out.Jobs == nil {
		out.Jobs = []jobs.Info{} // a list, even when empty
	}
	writeJSON(w, out)
}

func (s *Server) manage(w http.ResponseWriter) bool {
	if s.cfg.Jobs == nil {
		writeError(w, http.StatusNotFound, "this server has no job queue of its own to manage")
		return false
	}
	return true
}

func (s *Server) jobInfo(w http.ResponseWriter, r *http.Request) {
	if !s.manage(w) {
		return
	}
	in, err := s.cfg.Jobs.Info(r.PathValue("id"))
	if err != nil {
		s.jobError(w, err)
		return
	}
	writeJSON(w, in)
}

// JobChange is the answer of the POST mutations.
type JobChange struct {
	ID      string     `json:"id"`
	State   jobs.State `json:"state,omitempty"`
	Deleted bool       `json:"deleted,omitempty"`
}

func (s *Server) runJob(w http.ResponseWriter, r *http.Request) {
	if !s.manage(w) {
		return
	}
	id := r.PathValue("id")
	st, err := s.cfg.Jobs.RunNow(r.Context(), id)
	if err != nil {
		s.jobError(w, err)
		return
	}
	s.log.Info("admin: job put to run now", "job", id, "state", st)
	writeJSON(w, JobChange{ID: id, State: st})
}

func (s *Server) deleteJob(w http.ResponseWriter, r *http.Request) {
	if !s.manage(w) {
		return
	}
	id := r.PathValue("id")
	if err := s.cfg.Jobs.Delete(r.Context(), id); err != nil {
		s.jobError(w, err)
		return
	}
	s.log.Info("admin: job deleted", "job", id)
	writeJSON(w, JobChange{ID: id, Deleted: true})
}

func (s *Server) jobError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, jobs.ErrRunning):
		writeError(w, http.StatusConflict, err.Error())
	default:
		s.log.Warn("admin: job change failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, err.Error())
	}
}

// Run samples the sources once a second, until ctx ends: the rates and charts of the page
// and the API come from these samples.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	var sm sampler
	s.sample(ctx, &sm, time.Now(), true)
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.sample(ctx, &sm, now, n%int(depthEvery/sampleEvery) == 0)
		}
	}
}

// sampler remembers the previous sample, to turn counters into rates.
type sampler struct {
	at     time.Time
	stages map[string]StageCounts
	queue  QueueStats
	depth  *QueueDepth
	jobs   *jobs.Counts
}

func (s *Server) sample(ctx context.Context, sm *sampler, now time.Time, slow bool) {
	vals := map[string]float64{}
	dt := now.Sub(sm.at).Seconds()
	first := sm.at.IsZero()
	rate := func(cur, prev int64) float64 {
		if first || dt <= 0 {
			return 0
		}
		return float64(cur-prev) / dt
	}
	if s.cfg.Stages != nil {
		prev := sm.stages
		sm.stages = map[string]StageCounts{}
		for _, c := range s.cfg.Stages.Snapshot() {
			sm.stages[c.Name] = c
			p := "stage:" + c.Name + ":"
			old := prev[c.Name]
			vals[p+"done"] = rate(c.Done, old.Done)
			vals[p+"failed"] = rate(c.Failed, old.Failed)
			vals[p+"in_flight"] = float64(c.InFlight)
			if c.Received > 0 || old.Received > 0 {
				vals[p+"received"] = rate(c.Received, old.Received)
			}
			if !first && dt > 0 && c.Workers > 0 {
				vals[p+"busy"] = min(100, 100*(c.Busy-old.Busy)/(dt*float64(c.Workers)))
			} else {
				vals[p+"busy"] = 0
			}
		}
	}
	if s.cfg.Queue != nil {
		q := s.cfg.Queue.QueueStats()
		vals["queue:received"] = rate(q.Received, sm.queue.Received)
		vals["queue:deleted"] = rate(q.Deleted, sm.queue.Deleted)
		vals["queue:receives"] = rate(q.Receives, sm.queue.Receives)
		vals["queue:empty"] = rate(q.EmptyReceives, sm.queue.EmptyReceives)
		vals["queue:failed"] = rate(q.Failed, sm.queue.Failed)
		sm.queue = q
		if slow {
			rctx, cancel := context.WithTimeout(ctx, readTimeout)
			d, err := s.cfg.Queue.QueueDepth(rctx)
			cancel()
			s.mu.Lock()
			if err != nil {
				s.dErr = err.Error()
			} else {
				s.depth, s.dErr = &d, ""
				sm.depth = &d
			}
			s.mu.Unlock()
		}
		if d := sm.depth; d != nil {
			vals["queue:visible"] = float64(d.Queue.Visible)
			vals["queue:not_visible"] = float64(d.Queue.InFlight)
			if d.DLQ != nil {
				vals["queue:dlq"] = float64(d.DLQ.Visible + d.DLQ.InFlight + d.DLQ.Delayed)
			}
		}
	}
	// The embedded queue counts in memory; with SQS the counts are a request.
	if s.cfg.Counts != nil && (slow || s.cfg.Jobs != nil) {
		rctx, cancel := context.WithTimeout(ctx, readTimeout)
		c, err := s.cfg.Counts(rctx)
		cancel()
		if err == nil {
			sm.jobs = &c
			s.mu.Lock()
			s.jobsN = &c
			s.mu.Unlock()
		}
	}
	if c := sm.jobs; c != nil {
		vals["jobs:queued"] = float64(c.Queued)
		vals["jobs:running"] = float64(c.Running)
		vals["jobs:dead"] = float64(c.Dead)
	}
	sm.at = now
	s.hist.add(now, vals)
}
