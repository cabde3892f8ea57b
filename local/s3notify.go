package local

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// notificationConfiguration is the body of PutBucketNotificationConfiguration
// and GetBucketNotificationConfiguration. Only queue destinations are
// served: the embedded backend has no SNS or Lambda to deliver to.
type notificationConfiguration struct {
	XMLName             xml.Name             `xml:"NotificationConfiguration"`
	QueueConfigurations []queueConfiguration `xml:"QueueConfiguration"`

	// Read to refuse them with a clear error; never written.
	Topics   []struct{}                  `xml:"TopicConfiguration"`
	Lambdas  []struct{}                  `xml:"CloudFunctionConfiguration"`
	Lambdas2 []struct{}                  `xml:"LambdaFunctionConfiguration"`
	Bridge   *struct{ XMLName xml.Name } `xml:"EventBridgeConfiguration"`
}

type queueConfiguration struct {
	ID     string        `xml:"Id,omitempty"`
	Queue  string        `xml:"Queue"`
	Events []string      `xml:"Event"`
	Filter *eventsFilter `xml:"Filter,omitempty"`
}

type eventsFilter struct {
	S3Key struct {
		FilterRules []filterRule `xml:"FilterRule"`
	} `xml:"S3Key"`
}

type filterRule struct {
	Name  string `xml:"Name"`
	Value string `xml:"Value"`
}

// eventTypes are the event types S3 accepts in a configuration. The embedded
// S3 sends records for creations and removals; the others are accepted, as
// S3 accepts them, and never happen here.
var eventTypes = map[string]bool{
	"s3:ObjectCreated:*": true, "s3:ObjectCreated:Put": true, "s3:ObjectCreated:Post": true,
	"s3:ObjectCreated:Copy": true, "s3:ObjectCreated:CompleteMultipartUpload": true,
	"s3:ObjectRemoved:*": true, "s3:ObjectRemoved:Delete": true, "s3:ObjectRemoved:DeleteMarkerCreated": true,
	"s3:ObjectRestore:*": true, "s3:ObjectRestore:Post": true, "s3:ObjectRestore:Completed": true,
	"s3:ObjectRestore:Delete": true, "s3:ReducedRedundancyLostObject": true,
	"s3:Replication:*": true, "s3:Replication:OperationFailedReplication": true,
	"s3:Replication:OperationNotTracked": true, "s3:Replication:OperationMissedThreshold": true,
	"s3:Replication:OperationReplicatedAfterThreshold": true,
	"s3:LifecycleTransition":                           true, "s3:LifecycleExpiration:*": true,
	"s3:LifecycleExpiration:Delete": true, "s3:LifecycleExpiration:DeleteMarkerCreated": true,
	"s3:IntelligentTiering": true, "s3:ObjectTagging:*": true, "s3:ObjectTagging:Put": true,
	"s3:ObjectTagging:Delete": true, "s3:ObjectAcl:Put": true,
}

// matches reports whether an event named like "ObjectCreated:Put" on key is
// one the configuration asks for.
func (qc queueConfiguration) matches(event, key string) bool {
	if qc.Filter != nil {
		for _, r := range qc.Filter.S3Key.FilterRules {
			switch strings.ToLower(r.Name) {
			case "prefix":
				if !strings.HasPrefix(key, r.Value) {
					return false
				}
			case "suffix":
				if !strings.HasSuffix(key, r.Value) {
					return false
				}
			}
		}
	}
	kind, _, _ := strings.Cut(event, ":")
	for _, e := range qc.Events {
		e = strings.TrimPrefix(e, "s3:")
		if e == event || e == kind+":*" {
			return true
		}
	}
	return false
}

// validate checks a configuration as S3 does before it tries the
// destinations, and names the first fault.
func (c *notificationConfiguration) validate(region string) error {
	if len(c.Topics)+len(c.Lambdas)+len(c.Lambdas2) > 0 || c.Bridge != nil {
		return fmt.Errorf("the embedded S3 delivers notifications to SQS queues only, not to SNS topics, Lambda functions or EventBridge")
	}
	ids := map[string]bool{}
	for i := range c.QueueConfigurations {
		qc := &c.QueueConfigurations[i]
		if _, err := queueARNName(qc.Queue, region); err != nil {
			return err
		}
		if len(qc.Events) == 0 {
			return fmt.Errorf("queue configuration %d names no event", i+1)
		}
		for _, e := range qc.Events {
			if !eventTypes[e] {
				return fmt.Errorf("the event %q is not supported for notifications", e)
			}
		}
		if qc.Filter != nil {
			seen := map[string]bool{}
			for _, r := range qc.Filter.S3Key.FilterRules {
				name := strings.ToLower(r.Name)
				if name != "prefix" && name != "suffix" {
					return fmt.Errorf("filter rule name must be either prefix or suffix, not %q", r.Name)
				}
				if seen[name] {
					return fmt.Errorf("cannot specify more than one %s rule in a filter", name)
				}
				seen[name] = true
			}
		}
		if qc.ID != "" {
			if ids[qc.ID] {
				return fmt.Errorf("configuration id %q is used more than once", qc.ID)
			}
			ids[qc.ID] = true
		}
	}
	return nil
}

// queueARNName returns the queue name of arn:aws:sqs:REGION:ACCOUNT:NAME.
func queueARNName(arn, region string) (string, error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" || parts[5] == "" {
		return "", fmt.Errorf("queue %q is not the ARN of an SQS queue (arn:aws:sqs:%s:ACCOUNT:NAME)", arn, region)
	}
	return parts[5], nil
}

// putNotification serves PutBucketNotificationConfiguration: it checks the
// configuration, sends s3:TestEvent to each queue (a queue that cannot take
// it fails the call, as in S3) and then puts it in force.
func (s *s3Service) putNotification(w http.ResponseWriter, r *http.Request, bucket string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if ok, err := s.backend.BucketExists(bucket); err != nil || !ok {
		writeS3Error(w, r, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist", bucket)
		return
	}
	var cfg notificationConfiguration
	if err := xml.Unmarshal(body, &cfg); err != nil {
		writeS3Error(w, r, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema: "+err.Error(), bucket)
		return
	}
	if err := cfg.validate(s.region); err != nil {
		writeS3Error(w, r, http.StatusBadRequest, "InvalidArgument", err.Error(), bucket)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range cfg.QueueConfigurations {
		if cfg.QueueConfigurations[i].ID == "" {
			s.ids++
			cfg.QueueConfigurations[i].ID = fmt.Sprintf("local-config-%d", s.ids)
		}
	}
	sent := map[string]bool{}
	for _, qc := range cfg.QueueConfigurations {
		if sent[qc.Queue] {
			continue
		}
		sent[qc.Queue] = true
		if err := s.queues.notify(qc.Queue, s.testEvent(bucket)); err != nil {
			writeS3Error(w, r, http.StatusBadRequest, "InvalidArgument",
				fmt.Sprintf("Unable to validate the following destination configurations: %s: %v", qc.Queue, err), bucket)
			return
		}
	}
	cfg.Topics, cfg.Lambdas, cfg.Lambdas2, cfg.Bridge = nil, nil, nil, nil
	s.configs[bucket] = cfg
	w.WriteHeader(http.StatusOK)
}

// testEvent is the message S3 sends to a queue when a configuration names it.
func (s *s3Service) testEvent(bucket string) string {
	b, _ := json.Marshal(map[string]string{
		"Service":   "Amazon S3",
		"Event":     "s3:TestEvent",
		"Time":      s.now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"Bucket":    bucket,
		"RequestId": "LOCAL",
		"HostId":    "LOCAL",
	})
	return string(b)
}

// getNotification serves GetBucketNotificationConfiguration.
func (s *s3Service) getNotification(w http.ResponseWriter, r *http.Request, bucket string) {
	if ok, err := s.backend.BucketExists(bucket); err != nil || !ok {
		writeS3Error(w, r, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist", bucket)
		return
	}
	s.mu.Lock()
	cfg := s.configs[bucket]
	s.mu.Unlock()
	type out struct {
		XMLName             xml.Name             `xml:"http://s3.amazonaws.com/doc/2006-03-01/ NotificationConfiguration"`
		QueueConfigurations []queueConfiguration `xml:"QueueConfiguration"`
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(out{QueueConfigurations: cfg.QueueConfigurations})
}
