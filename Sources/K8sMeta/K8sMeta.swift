// K8sMeta: the Kubernetes API client (configuration, list/watch informers) and the
// IP → Pod / Service / Node / workload index that names every flow end.
public import CaptureCore
