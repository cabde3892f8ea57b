package local

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits of queue attributes, as SQS documents them.
const (
	maxVisibility   = 12 * time.Hour
	maxDelay        = 15 * time.Minute
	maxWait         = 20 * time.Second
	maxMessageBytes = 1 << 20 // the largest MaximumMessageSize, and the most a batch holds
	dedupInterval   = 5 * time.Minute
)

// queueAttrs are a queue's settable attributes: raw holds each as SQS reports it, the
// other fields the values the queue works with.
type queueAttrs struct {
	raw          map[string]string
	visibility   time.Duration
	delay        time.Duration
	wait         time.Duration
	retention    time.Duration // a message older than this is deleted
	maxSize      int
	contentDedup bool
	groupScope   bool   // DeduplicationScope messageGroup: deduplication ids count per group
	dlqName      string // from RedrivePolicy; empty: no dead-letter queue
	maxReceive   int
}

type intAttr struct{ min, max int }

// intAttrs are the numeric attributes and their ranges.
var intAttrs = map[string]intAttr{
	"DelaySeconds":                  {0, 900},
	"MaximumMessageSize":            {1024, maxMessageBytes},
	"MessageRetentionPeriod":        {60, 1209600},
	"ReceiveMessageWaitTimeSeconds": {0, 20},
	"VisibilityTimeout":             {0, 43200},
	"KmsDataKeyReusePeriodSeconds":  {60, 86400},
}

// textAttrs are kept as given and reported back; the queue does not act on them.
var textAttrs = map[string]bool{
	"Policy": true, "RedriveAllowPolicy": true, "KmsMasterKeyId": true, "SqsManagedSseEnabled": true,
}

// fifoAttrs exist on FIFO queues only.
var fifoAttrs = map[string][]string{
	"FifoQueue":                 {"true"},
	"ContentBasedDeduplication": {"true", "false"},
	"DeduplicationScope":        {"queue", "messageGroup"},
	"FifoThroughputLimit":       {"perQueue", "perMessageGroupId"},
}

func defaultAttrs(fifo bool) map[string]string {
	raw := map[string]string{
		"VisibilityTimeout":             "30",
		"DelaySeconds":                  "0",
		"MaximumMessageSize":            "1048576",
		"MessageRetentionPeriod":        "345600",
		"ReceiveMessageWaitTimeSeconds": "0",
		"SqsManagedSseEnabled":          "true",
	}
	if fifo {
		raw["FifoQueue"] = "true"
		raw["ContentBasedDeduplication"] = "false"
		raw["DeduplicationScope"] = "queue"
		raw["FifoThroughputLimit"] = "perQueue"
	}
	return raw
}

// newQueueAttrs validates the attributes of CreateQueue over the defaults.
func newQueueAttrs(given map[string]string, fifo bool) (queueAttrs, error) {
	if v, ok := given["FifoQueue"]; ok && !fifo {
		if v == "true" {
			return queueAttrs{}, errInvalidParameter("The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.")
		}
		return queueAttrs{}, errInvalidAttributeName("FifoQueue")
	}
	if fifo {
		if v, ok := given["FifoQueue"]; !ok || v != "true" {
			return queueAttrs{}, errInvalidParameter("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
		}
	}
	return queueAttrs{raw: defaultAttrs(fifo)}.with(given, fifo)
}

// with returns a copy of a with the given attributes set, or the first invalid one's error.
func (a queueAttrs) with(given map[string]string, fifo bool) (queueAttrs, error) {
	raw := maps.Clone(a.raw)
	for _, name := range slices.Sorted(maps.Keys(given)) {
		v := given[name]
		switch {
		case intAttrs[name] != intAttr{}:
			r := intAttrs[name]
			n, err := strconv.Atoi(v)
			if err != nil || n < r.min || n > r.max {
				return queueAttrs{}, errInvalidAttributeValue(name, "must be an integer from "+strconv.Itoa(r.min)+" to "+strconv.Itoa(r.max))
			}
			raw[name] = strconv.Itoa(n)
		case name == "RedrivePolicy":
			if v == "" {
				delete(raw, name)
				continue
			}
			if _, _, err := parseRedrive(v); err != nil {
				return queueAttrs{}, err
			}
			raw[name] = v
		case textAttrs[name]:
			raw[name] = v
		case fifoAttrs[name] != nil:
			if !fifo {
				return queueAttrs{}, errInvalidAttributeName(name)
			}
			if !slices.Contains(fifoAttrs[name], v) {
				return queueAttrs{}, errInvalidAttributeValue(name, "must be one of "+strings.Join(fifoAttrs[name], ", "))
			}
			raw[name] = v
		default:
			return queueAttrs{}, errInvalidAttributeName(name)
		}
	}
	return parsedAttrs(raw), nil
}

func parsedAttrs(raw map[string]string) queueAttrs {
	sec := func(name string) time.Duration {
		n, _ := strconv.Atoi(raw[name])
		return time.Duration(n) * time.Second
	}
	a := queueAttrs{
		raw:          raw,
		visibility:   sec("VisibilityTimeout"),
		delay:        sec("DelaySeconds"),
		wait:         sec("ReceiveMessageWaitTimeSeconds"),
		retention:    sec("MessageRetentionPeriod"),
		contentDedup: raw["ContentBasedDeduplication"] == "true",
		groupScope:   raw["DeduplicationScope"] == "messageGroup",
	}
	a.maxSize, _ = strconv.Atoi(raw["MaximumMessageSize"])
	if p, ok := raw["RedrivePolicy"]; ok {
		a.dlqName, a.maxReceive, _ = parseRedrive(p)
	}
	return a
}

// parseRedrive reads a RedrivePolicy: {"deadLetterTargetArn": ARN, "maxReceiveCount": N},
// the count as a number or a string of one.
func parseRedrive(v string) (dlqName string, maxReceive int, err error) {
	var p struct {
		DeadLetterTargetArn string
		MaxReceiveCount     json.RawMessage
	}
	bad := func(reason string) (string, int, error) {
		return "", 0, errInvalidAttributeValue("RedrivePolicy", reason)
	}
	if json.Unmarshal([]byte(v), &p) != nil {
		return bad("Redrive policy is not a valid JSON map.")
	}
	if p.DeadLetterTargetArn == "" {
		return bad("Redrive policy does not contain mandatory attribute: deadLetterTargetArn.")
	}
	if len(p.MaxReceiveCount) == 0 {
		return bad("Redrive policy does not contain mandatory attribute: maxReceiveCount.")
	}
	n, err := strconv.Atoi(strings.Trim(string(p.MaxReceiveCount), `"`))
	if err != nil || n < 1 || n > 1000 {
		return bad("Value " + string(p.MaxReceiveCount) + " for parameter MaxReceiveCount is invalid. Reason: must be an integer from 1 to 1000.")
	}
	parts := strings.Split(p.DeadLetterTargetArn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" {
		return bad("Dead-letter target ARN " + p.DeadLetterTargetArn + " is not the ARN of a queue.")
	}
	return parts[5], n, nil
}

// msgAttrValue is a message attribute as the JSON protocol carries it; binary values are
// base64 in JSON, which []byte is.
type msgAttrValue struct {
	DataType         string
	StringValue      *string  `json:",omitempty"`
	BinaryValue      []byte   `json:",omitempty"`
	StringListValues []string `json:",omitempty"`
	BinaryListValues [][]byte `json:",omitempty"`
}

// validateMsgAttrs checks message attributes as SQS does; size is what they count toward
// the message size limit.
func validateMsgAttrs(attrs map[string]msgAttrValue, kind string) (size int, err error) {
	if len(attrs) > 10 {
		return 0, errInvalidParameter("Number of message attributes [%d] exceeds the allowed maximum [10].", len(attrs))
	}
	for name, v := range attrs {
		if !validAttrName(name) {
			return 0, errInvalidParameter("Message (%s) attribute name '%s' is invalid. Attribute name can contain A-Z, a-z, 0-9, underscore (_), hyphen (-), and period (.) characters.", kind, name)
		}
		base, _, _ := strings.Cut(v.DataType, ".")
		switch base {
		case "String", "Number":
			if v.StringValue == nil || *v.StringValue == "" {
				return 0, errInvalidParameter("Message (%s) attribute '%s' must contain a non-empty message attribute value for message attribute type '%s'.", kind, name, base)
			}
			if base == "Number" {
				if _, err := strconv.ParseFloat(*v.StringValue, 64); err != nil {
					return 0, errInvalidParameter("Value %s for parameter MessageAttributeValue is invalid. Reason: Could not cast message attribute '%s' value to number.", *v.StringValue, name)
				}
			}
			size += len(*v.StringValue)
		case "Binary":
			if len(v.BinaryValue) == 0 {
				return 0, errInvalidParameter("Message (%s) attribute '%s' must contain a non-empty message attribute value for message attribute type 'Binary'.", kind, name)
			}
			size += len(v.BinaryValue)
		default:
			if v.DataType == "" {
				return 0, errInvalidParameter("Message (%s) attribute '%s' must contain a non-empty message attribute type.", kind, name)
			}
			return 0, errInvalidParameter("The type of message (%s) attribute '%s' is invalid. You must use only the following supported type prefixes: Binary, Number, String.", kind, name)
		}
		size += len(name) + len(v.DataType)
	}
	return size, nil
}

func validAttrName(name string) bool {
	if name == "" || len(name) > 256 || name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return false
	}
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.") {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// md5OfAttrs is MD5OfMessageAttributes as SQS computes it: for each attribute in name
// order, the name, the data type (each prefixed by its length as 4 big-endian bytes), a
// transport byte (1 string, 2 binary) and the length-prefixed value; hex of the MD5.
// Empty when there are no attributes.
func md5OfAttrs(attrs map[string]msgAttrValue) string {
	if len(attrs) == 0 {
		return ""
	}
	h := md5.New()
	var n [4]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		v := attrs[name]
		put([]byte(name))
		put([]byte(v.DataType))
		if v.StringValue != nil {
			h.Write([]byte{1})
			put([]byte(*v.StringValue))
		} else {
			h.Write([]byte{2})
			put(v.BinaryValue)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// selectAttrs picks the message attributes a receive asked for: names, "All", ".*", or
// "prefix.*".
func selectAttrs(attrs map[string]msgAttrValue, names []string) map[string]msgAttrValue {
	if len(attrs) == 0 || len(names) == 0 {
		return nil
	}
	var out map[string]msgAttrValue
	for name, v := range attrs {
		for _, want := range names {
			if want == "All" || want == ".*" || want == name ||
				strings.HasSuffix(want, ".*") && strings.HasPrefix(name, want[:len(want)-1]) {
				if out == nil {
					out = make(map[string]msgAttrValue, len(attrs))
				}
				out[name] = v
				break
			}
		}
	}
	return out
}

// validBody: SQS accepts #x9, #xA, #xD, #x20 to #xD7FF, #xE000 to #xFFFD, #x10000 to
// #x10FFFF; anything else (and invalid UTF-8) is refused.
func validBody(s string) bool {
	for i, r := range s {
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
			if r == 0xFFFD && !strings.HasPrefix(s[i:], "\uFFFD") {
				return false // invalid UTF-8 decodes as U+FFFD of width 1
			}
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}
