package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palleto/palleto/sqs"
)

// StatsSource is what [SQSCollector] reads: *sqs.Source implements it.
type StatsSource interface {
	Stats() sqs.Stats
}

// Event label values of palleto_sqs_messages_total.
const (
	SQSReceived     = "received"
	SQSDeleted      = "deleted"
	SQSReleased     = "released"
	SQSFailed       = "failed"
	SQSExtended     = "extended"
	SQSDeadLettered = "dead_lettered"
	SQSRedelivered  = "redelivered"
	SQSInvalid      = "invalid"
	SQSDropped      = "dropped"
)

// An SQSCollector exports an SQS source's counters, read from its Stats at each scrape:
//
//	palleto_sqs_requests_total{action}         counter  requests made, by SQS action
//	palleto_sqs_request_failures_total         counter  requests that failed (all actions)
//	palleto_sqs_empty_receives_total           counter  receives that brought no message
//	palleto_sqs_messages_total{event}          counter  messages by event: received,
//	                                                    deleted, released, failed, extended
//	                                                    (visibility extensions), dead_lettered,
//	                                                    redelivered, invalid (batch entries SQS
//	                                                    refused), dropped (deletes and
//	                                                    visibility changes given up)
//	palleto_sqs_in_flight                      gauge    messages handed out, not yet acknowledged
//	palleto_sqs_held                           gauge    messages received, not yet handed out
//	palleto_sqs_demand                         gauge    messages asked for by waiting receives
//
// Register it with a prometheus.Registerer; it is safe for concurrent scrapes.
type SQSCollector struct {
	src                          StatsSource
	requests, failures, messages *prometheus.Desc
	empty                        *prometheus.Desc
	inFlight, held, demand       *prometheus.Desc
}

// NewSQSCollector returns a collector of src's counters.
func NewSQSCollector(src StatsSource) *SQSCollector {
	return &SQSCollector{
		src:      src,
		requests: prometheus.NewDesc("palleto_sqs_requests_total", "Requests the SQS source made, by action.", []string{"action"}, nil),
		failures: prometheus.NewDesc("palleto_sqs_request_failures_total", "Requests of the SQS source that failed, all actions.", nil, nil),
		empty:    prometheus.NewDesc("palleto_sqs_empty_receives_total", "Receives of the SQS source that succeeded and brought no message.", nil, nil),
		messages: prometheus.NewDesc("palleto_sqs_messages_total", "Messages of the SQS source by event (extended: visibility extensions; invalid: batch entries SQS refused; dropped: deletes and visibility changes given up).", []string{"event"}, nil),
		inFlight: prometheus.NewDesc("palleto_sqs_in_flight", "Messages handed out to the pipeline and not yet acknowledged.", nil, nil),
		held:     prometheus.NewDesc("palleto_sqs_held", "Messages received and not yet handed out.", nil, nil),
		demand:   prometheus.NewDesc("palleto_sqs_demand", "Messages asked for by receives that are waiting.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *SQSCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.failures, c.empty, c.messages, c.inFlight, c.held, c.demand} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *SQSCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	r := st.Requests
	counter(c.requests, r.ReceiveMessage, "ReceiveMessage")
	counter(c.requests, r.DeleteMessageBatch, "DeleteMessageBatch")
	counter(c.requests, r.ChangeMessageVisibilityBatch, "ChangeMessageVisibilityBatch")
	counter(c.requests, r.SendMessage, "SendMessage")
	counter(c.requests, r.GetQueueAttributes, "GetQueueAttributes")
	counter(c.failures, r.Failed)
	counter(c.empty, st.EmptyReceives)
	counter(c.messages, st.Received, SQSReceived)
	counter(c.messages, st.Deleted, SQSDeleted)
	counter(c.messages, st.Released, SQSReleased)
	counter(c.messages, st.Failed, SQSFailed)
	counter(c.messages, st.Extended, SQSExtended)
	counter(c.messages, st.DeadLettered, SQSDeadLettered)
	counter(c.messages, st.Redelivered, SQSRedelivered)
	counter(c.messages, st.Invalid, SQSInvalid)
	counter(c.messages, st.Dropped, SQSDropped)
	gauge(c.inFlight, st.InFlight)
	gauge(c.held, st.Held)
	gauge(c.demand, st.Demand)
}
