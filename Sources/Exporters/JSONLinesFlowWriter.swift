public import CaptureCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A ``FlowSink`` that writes flow events as JSON lines to a file descriptor (stdout, a file,
/// a pipe to the log pipeline). Buffered; call ``flush()`` before exit.
///
/// Which events are written is configurable: by default only ``FlowEvent/closed`` records
/// (one final line per flow); ``includeUpdates`` adds interim and opened events.
public struct JSONLinesFlowWriter: FlowSink {
    public let fileDescriptor: Int32
    public var includeUpdates: Bool
    public var names: NameTable?
    /// Lines written.
    public private(set) var written: UInt64 = 0
    /// The first write error (errno); writing stops after it and later events are counted as lost.
    public private(set) var writeError: Int32? = nil
    public private(set) var lost: UInt64 = 0
    var buffer = JSONBuffer(capacity: 1 << 16)

    public init(fileDescriptor: Int32, includeUpdates: Bool = false, names: NameTable? = nil) {
        self.fileDescriptor = fileDescriptor
        self.includeUpdates = includeUpdates
        self.names = names
    }

    public mutating func receive(_ event: FlowEvent, _ flow: FlowRecord) {
        guard event == .closed || includeUpdates else { return }
        guard writeError == nil else {
            lost &+= 1
            return
        }
        FlowJSON.append(event, flow, names: names, to: &buffer)
        written &+= 1
        if buffer.bytes.count >= 1 << 16 { flush() }
    }

    /// Writes what is buffered (see ``CaptureCore/writeAll(to:_:)``).
    public mutating func flush() {
        guard writeError == nil else { return }
        let failure = unsafe buffer.bytes.withUnsafeBytes { writeAll(to: fileDescriptor, $0) }
        if failure != 0 { writeError = failure }
        buffer.removeAll()
    }
}
