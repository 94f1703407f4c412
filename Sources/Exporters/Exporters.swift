public import CaptureCore
