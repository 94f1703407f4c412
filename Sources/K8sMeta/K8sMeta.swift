// The Kubernetes API client and the IP → Pod / Service / Node index arrive with issue #4.
public import CaptureCore
