package sqs

import (
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/palleto/palleto/internal/sdkhttp"
)

// CopyRequestBodies is an option of the SDK's SQS client, for the client a Source uses:
//
//	sqs.New(awssqs.NewFromConfig(awsCfg, sqs.CopyRequestBodies), cfg)
//
// It gives each request a body of its own. The SDK closes the body it built for a request as
// soon as the HTTP client returns, and net/http may still be reading it then when a fast
// endpoint (an emulator on the same machine, palleto local) has answered already: the answer
// is lost, and the SDK retries the call. The messages of a lost ReceiveMessage answer stay in
// flight until their visibility timeout ends, with no one to handle them. SQS requests are
// small JSON documents: the copy costs little.
func CopyRequestBodies(o *awssqs.Options) { sdkhttp.OwnSQSBodies(o) }
