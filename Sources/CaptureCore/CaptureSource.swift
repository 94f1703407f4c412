/// A source of packets: a capture file, an AF_PACKET ring, a libpcap handle, a BPF ring buffer.
///
/// A capture loop calls ``poll(timeout:_:)`` again and again on one thread. Each call hands
/// `body` every packet that is ready — one ring block, one libpcap buffer — borrowed from the
/// source's memory: a ``PacketRecord`` is valid only inside `body`, and nothing is copied.
/// Sources are generic parameters (`S: CaptureSource & ~Copyable`), never existentials, so the
/// per-packet call is direct.
public protocol CaptureSource: ~Copyable {
    /// Waits at most `timeoutMilliseconds` (0: do not wait, negative: wait indefinitely) for
    /// packets, then lends every packet that is ready to `body`, in order.
    /// - Returns: the number of packets delivered; 0 when the wait timed out.
    /// - Throws: ``CaptureSourceError`` when the source failed (the interface went away, the file
    ///   is damaged). Packets before the failure have been delivered.
    mutating func poll(
        timeoutMilliseconds: Int32, _ body: (borrowing PacketRecord) -> Void
    ) throws(CaptureSourceError) -> Int

    /// Counters of what the source received and what was lost before it could be delivered.
    var statistics: CaptureStatistics { get }
}

/// What a capture source saw and lost. Every counter is cumulative since the source opened.
public struct CaptureStatistics: Sendable, Hashable, CustomStringConvertible {
    /// Packets delivered to the caller.
    public var delivered: UInt64 = 0
    /// Packets the kernel accepted for this source (after its filter), delivered or not.
    public var received: UInt64 = 0
    /// Packets the kernel dropped because the buffer or ring was full.
    public var droppedByKernel: UInt64 = 0
    /// Packets the interface or driver dropped (libpcap's `ps_ifdrop`), when known.
    public var droppedByInterface: UInt64 = 0
    /// Times the kernel froze the ring's queue after running out of blocks (TPACKET_V3).
    public var queueFreezes: UInt64 = 0
    /// Batches (ring blocks, libpcap buffers) delivered.
    public var batches: UInt64 = 0

    public init() {}

    public var description: String {
        "delivered \(delivered), received \(received), dropped by kernel \(droppedByKernel), "
            + "dropped by interface \(droppedByInterface), queue freezes \(queueFreezes), batches \(batches)"
    }
}

/// Why a capture source could not open or continue.
public struct CaptureSourceError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The interface does not exist (or no longer exists).
        case noSuchInterface
        /// The interface is down.
        case interfaceDown
        /// Missing privilege (CAP_NET_RAW, CAP_NET_ADMIN or CAP_SYS_ADMIN for namespaces).
        case permissionDenied
        /// A filter expression did not compile.
        case invalidFilter
        /// The network namespace could not be entered.
        case namespace
        /// An invalid configuration (sizes, counts).
        case invalidConfiguration
        /// A capture file is unreadable or damaged.
        case file
        /// Any other system call failure.
        case system
    }

    public var code: Code
    /// The operation that failed ("setsockopt(PACKET_RX_RING)", "pcap_activate", …).
    public var operation: String
    /// `errno` at the failure, 0 when none.
    public var errno: Int32
    /// A sentence a user can act on.
    public var message: String

    public init(_ code: Code, operation: String, errno: Int32 = 0, message: String) {
        self.code = code
        self.operation = operation
        self.errno = errno
        self.message = message
    }

    public var description: String {
        errno == 0 ? "\(operation): \(message)" : "\(operation): \(message) (errno \(errno))"
    }
}

extension CaptureFileReader: CaptureSource {
    /// Delivers up to 256 packets per call; a file never waits. 0 at the end of the file.
    public mutating func poll(
        timeoutMilliseconds: Int32, _ body: (borrowing PacketRecord) -> Void
    ) throws(CaptureSourceError) -> Int {
        var n = 0
        do {
            while n < 256, try advance() {
                body(packet)
                n &+= 1
            }
        } catch {
            throw CaptureSourceError(.file, operation: "read \(error.fileName)", message: error.description)
        }
        if n > 0 { _pollBatches &+= 1 }
        return n
    }

    /// Every packet read so far (by ``poll(timeoutMilliseconds:_:)`` or ``advance()``) counts
    /// as received and delivered; a file drops nothing.
    public var statistics: CaptureStatistics {
        CaptureStatistics(everyPacketOf: packetCount, batches: _pollBatches)
    }
}

extension CaptureStatistics {
    /// A file's or a stream's: every packet read was received and delivered.
    init(everyPacketOf packets: Int, batches: UInt64) {
        received = UInt64(packets)
        delivered = UInt64(packets)
        self.batches = batches
    }
}
