package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// approxCount adds up the approximate message counts of a queue that names ask for.
func approxCount(ctx context.Context, client *awssqs.Client, url string, names ...sqstypes.QueueAttributeName) (int, error) {
	out, err := client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: names})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range out.Attributes {
		k, _ := strconv.Atoi(v)
		n += k
	}
	return n, nil
}

// deadLetterQueue returns the URL of the dead-letter queue that queueURL's redrive policy
// names, or "" when it has none or it cannot be found (then said in the log): the jobs that
// SQS moved there are the dead ones.
func deadLetterQueue(ctx context.Context, client *awssqs.Client, queueURL string, log *slog.Logger) string {
	out, err := client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl:       &queueURL,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		log.Warn("cannot read the queue's redrive policy: dead jobs are not counted", "err", err)
		return ""
	}
	policy, ok := out.Attributes[string(sqstypes.QueueAttributeNameRedrivePolicy)]
	if !ok {
		log.Info("the queue has no redrive policy: failed jobs are retried without end")
		return ""
	}
	var rp struct {
		Target string `json:"deadLetterTargetArn"`
	}
	err = json.Unmarshal([]byte(policy), &rp)
	parts := strings.Split(rp.Target, ":") // arn:aws:sqs:REGION:ACCOUNT:NAME
	if err != nil || len(parts) != 6 || parts[2] != "sqs" {
		log.Warn("cannot read the queue's redrive policy: dead jobs are not counted", "policy", policy)
		return ""
	}
	u, err := client.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: &parts[5], QueueOwnerAWSAccountId: &parts[4]})
	if err != nil {
		log.Warn("cannot find the dead-letter queue: dead jobs are not counted", "arn", rp.Target, "err", err)
		return ""
	}
	return aws.ToString(u.QueueUrl)
}

// sendAttempts bounds the tries of the entries of a SendMessageBatch that SQS failed on its
// side; entries it refused as the sender's fault are not retried.
const sendAttempts = 4

// sendJobs sends one message per id, in batches of 10, and returns once SQS accepted all of
// them, or an error (the webhook then answers 503, and Dropbox calls again). On a FIFO queue
// the id is the message group, so that the jobs of one id run one at a time, in order, on
// whichever server; each message has a deduplication id of its own, so that a post is never
// merged into one sent before it (its job may be running already).
func sendJobs(ctx context.Context, client *awssqs.Client, url string, ids []string) error {
	fifo := strings.HasSuffix(url, ".fifo")
	for len(ids) > 0 {
		batch := ids[:min(10, len(ids))]
		ids = ids[len(batch):]
		left := make(map[string]string, len(batch)) // entry id → job id
		dedupIDs := map[string]string{}             // entry id → deduplication id, kept across tries
		for i, id := range batch {
			eid := strconv.Itoa(i)
			left[eid] = id
			if fifo {
				dedupIDs[eid] = strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36)
			}
		}
		for attempt := 1; len(left) > 0; attempt++ {
			if attempt > sendAttempts {
				return fmt.Errorf("sending jobs to SQS: %d not accepted after %d tries", len(left), sendAttempts)
			}
			if attempt > 1 {
				t := time.NewTimer(time.Duration(attempt-1) * 100 * time.Millisecond)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				}
			}
			entries := make([]sqstypes.SendMessageBatchRequestEntry, 0, len(left))
			for eid, id := range left {
				e := sqstypes.SendMessageBatchRequestEntry{Id: aws.String(eid), MessageBody: aws.String(id)}
				if fifo {
					e.MessageGroupId = aws.String(id)
					e.MessageDeduplicationId = aws.String(dedupIDs[eid])
				}
				entries = append(entries, e)
			}
			out, err := client.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: &url, Entries: entries})
			if err != nil {
				return fmt.Errorf("sending jobs to SQS: %w", err)
			}
			for _, ok := range out.Successful {
				delete(left, aws.ToString(ok.Id))
			}
			for _, f := range out.Failed {
				if f.SenderFault {
					return fmt.Errorf("sending job %q to SQS: %s: %s", left[aws.ToString(f.Id)], aws.ToString(f.Code), aws.ToString(f.Message))
				}
			}
		}
	}
	return nil
}
