// Command kstatus prints Flux's health verdict on one Kubernetes object.
//
// It reads the object as JSON on stdin (for example `kubectl get hd NAME -o json`) and
// prints {"status": "...", "message": "..."} computed by status.Compute from
// sigs.k8s.io/cli-utils/pkg/kstatus/status: the library Flux's kustomize-controller judges
// custom resources with for `wait` and `healthChecks`. Statuses are InProgress, Failed,
// Current, Terminating, NotFound and Unknown.
//
// It exists so that the test suite checks the conditions the operator publishes against
// the real library rather than a re-implementation of its rules. cluster/build.sh builds
// it in a throw-away module pinned to CLI_UTILS_VERSION (cluster/versions.env); this file
// is the only source, and cluster/kstatus.py runs the binary.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	// UnmarshalJSON (not encoding/json into a map) keeps whole numbers as int64, as the
	// API machinery does: kstatus reads metadata.generation and status.observedGeneration
	// with NestedInt64 and fails on float64.
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return fmt.Errorf("decoding the object: %w", err)
	}
	result, err := status.Compute(u)
	if err != nil {
		return fmt.Errorf("computing the status: %w", err)
	}
	return json.NewEncoder(out).Encode(verdict{Status: result.Status.String(), Message: result.Message})
}
