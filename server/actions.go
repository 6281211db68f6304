package server

import (
	"context"
	"strings"
)

// An action is one row of the Query API's dispatch table: the Action
// parameter's value and the handler that answers it. A handler reads
// its parameters from the call (params.go), records the ids it touched
// in c.ids for the request's log line, and returns the response whose
// fields go under <ActionResponse> (after requestId), or an error: an
// *apiError for a refusal with EC2's code, anything else is logged and
// answered InternalError (or ServiceUnavailable when the store cannot be
// reached). Authentication, Version, DryRun, logging and metrics are done
// for every action before and after its handler.
type action struct {
	name   string
	handle func(s *Server, ctx context.Context, c *call) (response, error)
}

// actions is every action the server answers. Adding one is a row here
// and its handler in a file of its own; the UnsupportedOperation message
// and the metrics' action label follow from this table.
var actions = []action{
	{"ImportVolume", (*Server).importVolume},
	{"ImportInstance", (*Server).importInstance},
	{"DescribeConversionTasks", (*Server).describeConversionTasks},
	{"CancelConversionTask", (*Server).cancelConversionTask},
	{"DescribeVolumes", (*Server).describeVolumes},
	{"DescribeInstances", (*Server).describeInstances},
	{"DeleteVolume", (*Server).deleteVolume},
	{"BundleInstance", (*Server).bundleInstance},
	{"DescribeBundleTasks", (*Server).describeBundleTasks},
	{"CancelBundleTask", (*Server).cancelBundleTask},
	{"ImportSnapshot", (*Server).importSnapshot},
	{"DescribeImportSnapshotTasks", (*Server).describeImportSnapshotTasks},
	{"ImportImage", (*Server).importImage},
	{"DescribeImportImageTasks", (*Server).describeImportImageTasks},
	{"CancelImportTask", (*Server).cancelImportTask},
	{"DescribeSnapshots", (*Server).describeSnapshots},
	{"DeleteSnapshot", (*Server).deleteSnapshot},
	{"CreateVolume", (*Server).createVolume},
	{"RegisterImage", (*Server).registerImage},
	{"DescribeImages", (*Server).describeImages},
	{"DeregisterImage", (*Server).deregisterImage},
	{"CreateTags", (*Server).createTags},
	{"DeleteTags", (*Server).deleteTags},
	{"DescribeTags", (*Server).describeTags},
	{"ExportImage", (*Server).exportImage},
	{"DescribeExportImageTasks", (*Server).describeExportImageTasks},
	{"CreateInstanceExportTask", (*Server).createInstanceExportTask},
	{"DescribeExportTasks", (*Server).describeExportTasks},
	{"CancelExportTask", (*Server).cancelExportTask},
}

// actionIndex finds a row of actions by name, and supported lists the
// names in the table's order for the UnsupportedOperation message: both
// made once, from the table.
var actionIndex, supported = indexActions(actions)

func indexActions(table []action) (map[string]action, string) {
	index := make(map[string]action, len(table))
	names := make([]string, 0, len(table))
	for _, a := range table {
		if _, dup := index[a.name]; dup {
			panic("server: action " + a.name + " is in the table twice")
		}
		index[a.name] = a
		names = append(names, a.name)
	}
	return index, strings.Join(names, ", ")
}

// Actions returns the names of the actions the server answers, in the
// order of its dispatch table.
func Actions() []string {
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = a.name
	}
	return names
}
