// N capture threads, one AF_PACKET fanout member each, each with its own worker state (a
// FlowTracker, typically): a symmetric hash of the innermost flow, computed in the kernel by
// PodTap's fanout program, keeps both directions of a flow on one thread (also inside
// flannel's VXLAN), so no state is shared and nothing is locked per packet.
public import CaptureCore
internal import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// The per-thread state of a capture runner: it sees every packet its thread captures, on that
/// thread only, and turns into a result when the capture stops.
///
/// ```swift
/// struct Tracking: CaptureWorker, ~Copyable {
///     var tracker = FlowTracker(sink: CollectingFlowSink())
///     let decoder = PacketDecoder()
///     mutating func process(_ packet: borrowing PacketRecord) {
///         tracker.process(frame: packet.bytes, linkType: packet.linkType, decoder: decoder,
///                         timestamp: packet.timestamp, wireLength: packet.originalLength)
///     }
///     consuming func finish() -> [FlowRecord] { tracker.finish(); return tracker.sink.closed }
/// }
/// ```
public protocol CaptureWorker: ~Copyable {
    associatedtype Result: Sendable
    /// One packet, valid only during the call.
    mutating func process(_ packet: borrowing PacketRecord)
    /// A packet that ``process(_:)`` will get soon, a few packets later (valid only during
    /// the call; its bytes stay unchanged until it is processed): a place to start work whose
    /// memory loads would otherwise stall, such as
    /// ``FlowTracker/prepare(frame:linkType:decoder:timestamp:wireLength:)``. Optional; the
    /// default does nothing, and a packet may be processed without having been prepared.
    mutating func prepare(_ upcoming: borrowing PacketRecord)
    /// Whether ``prepare(_:)`` does anything: only then does the source look ahead (reading
    /// each ring frame's header twice costs a few nanoseconds per packet). Default false.
    var preparesAhead: Bool { get }
    /// After every poll, also when it timed out (`delivered` 0): a place to expire idle state.
    mutating func pollEnded(delivered: Int)
    /// The capture stopped; called on the worker's thread after the last packet.
    consuming func finish() -> Result
}

extension CaptureWorker where Self: ~Copyable {
    public mutating func pollEnded(delivered: Int) {}
    public mutating func prepare(_ upcoming: borrowing PacketRecord) {}
    public var preparesAhead: Bool { false }
}

/// Captures on one interface with several threads, each polling its own ``AFPacketSource``
/// that is a member of one `PACKET_FANOUT` group, each with its own ``CaptureWorker`` made by
/// a factory on that thread.
///
/// With more than one thread and no fanout in the configuration, the members join a new group
/// in ``AFPacketFanoutMode/flow`` mode with IP defragmentation, so a flow stays on one thread
/// (also a flow inside flannel's VXLAN).
/// Every member is opened and has joined the group before any keeps a packet (they start with
/// a filter that drops everything), so no flow is split by a member joining late.
/// ``stop()`` sets a flag the threads check after each poll, joins them, and returns each
/// worker's result and each source's statistics.
public final class AFPacketCapture<Worker: CaptureWorker & ~Copyable>: @unchecked Sendable {
    /// What the threads produced.
    public struct Report: Sendable {
        /// One per thread, in member order.
        public var results: [Worker.Result]
        /// Each member's source statistics.
        public var statistics: [CaptureStatistics]
        /// Each member's frames with a restored VLAN tag.
        public var vlanTagsRestored: [UInt64]
        /// The error that ended a member's loop early, if any.
        public var errors: [CaptureSourceError?]

        /// The members' statistics summed.
        public var total: CaptureStatistics {
            var sum = CaptureStatistics()
            for s in statistics {
                sum.delivered &+= s.delivered
                sum.received &+= s.received
                sum.droppedByKernel &+= s.droppedByKernel
                sum.droppedByInterface &+= s.droppedByInterface
                sum.queueFreezes &+= s.queueFreezes
                sum.batches &+= s.batches
            }
            return sum
        }
    }

    /// The configuration the members were opened with (fanout group filled in).
    public let configuration: AFPacketConfiguration
    /// Number of capture threads.
    public var threadCount: Int { members.count }
    /// Threads still capturing: a thread ends early when its source fails (the interface was
    /// removed), and its error is in the ``Report``.
    public var activeThreads: Int { stopping.active.load(ordering: .relaxed) }

    private let members: [Member]
    private let stopping: StopFlag
    private let threads: [pthread_t]
    private let report = Mutex<Report?>(nil)

    /// Opens `threads` sources and starts one thread per source.
    /// - Parameters:
    ///   - configuration: the sources' configuration; with `threads > 1` and no fanout, a new
    ///     flow-hash fanout group (with defragmentation) is created.
    ///   - threads: capture threads, 1...1024.
    ///   - pollTimeoutMilliseconds: the longest a thread waits before checking the stop flag;
    ///     also how often ``CaptureWorker/pollEnded(delivered:)`` runs on a quiet interface.
    ///   - makeWorker: called once on each capture thread with the member's index.
    /// - Throws: ``CaptureSourceError`` when a source cannot be opened or a thread cannot be
    ///   started; nothing keeps running.
    public init(
        configuration: AFPacketConfiguration, threads: Int = 1, pollTimeoutMilliseconds: Int32 = 100,
        makeWorker: @escaping @Sendable (_ member: Int) -> Worker
    ) throws(CaptureSourceError) {
        guard (1...1024).contains(threads) else {
            throw CaptureSourceError(.invalidConfiguration, operation: "AFPacketCapture",
                                     message: "thread count \(threads) must be between 1 and 1024")
        }
        guard pollTimeoutMilliseconds > 0 else {
            throw CaptureSourceError(.invalidConfiguration, operation: "AFPacketCapture",
                                     message: "poll timeout \(pollTimeoutMilliseconds) ms must be positive, or stop() could wait forever")
        }
        var configuration = configuration
        if threads > 1, configuration.fanout == nil {
            configuration.fanout = AFPacketFanout(groupID: nil, mode: .flow, defragments: true)
        }
        let paused = configuration.fanout != nil
        let stopping = StopFlag(active: threads)
        var members: [Member] = []
        for index in 0..<threads {
            let source = try AFPacketSource(configuration: configuration, paused: paused)
            if index == 0, let id = source.fanoutGroupID {
                configuration.fanout?.groupID = id  // the kernel's choice; the others join it
            }
            members.append(Member(index: index, source: source, stopping: stopping,
                                  pollTimeoutMilliseconds: pollTimeoutMilliseconds, makeWorker: makeWorker))
        }
        // Every member is in the group: from here on packets are kept, each by its member.
        for member in members { try member.resume() }
        var started: [pthread_t] = []
        for member in members {
            do throws(CaptureSourceError) {
                started.append(try BackendThread.start(name: "podtap-afp-\(member.index)") { member.run() })
            } catch {
                stopping.flag.store(true, ordering: .releasing)
                for thread in started { pthread_join(thread, nil) }
                throw error
            }
        }
        self.configuration = configuration
        self.members = members
        self.stopping = stopping
        self.threads = started
    }

    deinit { _ = stop() }

    /// Stops every thread after its current poll, waits for them, and returns what they
    /// produced. Later calls return the same report. Before a thread ends it delivers what its
    /// ring still holds, including the block the kernel is filling, which takes up to two
    /// block retire timeouts (at most 1 s); a thread whose interface was removed does the same.
    @discardableResult
    public func stop() -> Report {
        report.withLock { report in
            if let report { return report }
            stopping.flag.store(true, ordering: .releasing)
            for thread in threads { pthread_join(thread, nil) }
            var results: [Worker.Result] = []
            for member in members {
                guard let result = member.result else { preconditionFailure("capture thread ended without a result") }
                results.append(result)
            }
            let made = Report(results: results, statistics: members.map(\.statistics),
                              vlanTagsRestored: members.map(\.vlanTagsRestored), errors: members.map(\.error))
            report = made
            return made
        }
    }

    /// One thread's source, worker factory and outcome. The outcome fields are written by the
    /// thread before it ends and read after `pthread_join`.
    private final class Member {
        let index: Int
        var source: AFPacketSource?
        let stopping: StopFlag
        let pollTimeoutMilliseconds: Int32
        let makeWorker: @Sendable (Int) -> Worker
        var result: Worker.Result?
        var statistics = CaptureStatistics()
        var vlanTagsRestored: UInt64 = 0
        var error: CaptureSourceError?

        init(index: Int, source: consuming AFPacketSource, stopping: StopFlag, pollTimeoutMilliseconds: Int32,
             makeWorker: @escaping @Sendable (Int) -> Worker) {
            self.index = index
            self.source = consume source
            self.stopping = stopping
            self.pollTimeoutMilliseconds = pollTimeoutMilliseconds
            self.makeWorker = makeWorker
        }

        func resume() throws(CaptureSourceError) {
            try source?.resume()
        }

        func run() {
            guard var source = source.take() else { return }
            var worker = makeWorker(index)
            while !stopping.flag.load(ordering: .acquiring) {
                do throws(CaptureSourceError) {
                    let n = try source.poll(timeoutMilliseconds: pollTimeoutMilliseconds, preparing: worker.preparesAhead,
                                            prepare: { worker.prepare($0) }) { worker.process($0) }
                    worker.pollEnded(delivered: n)
                } catch {
                    if error.code == .interfaceDown { continue }  // resumes when the interface is up
                    self.error = error
                    break
                }
            }
            // Deliver what the ring still holds: the blocks the kernel handed over, and the one
            // it is filling, which it hands over within two retire timeouts of its first
            // packet (its timer keeps running after the interface is removed). So a stop, or
            // an interface that disappears, loses none of the packets captured before it;
            // the wait ends at that bound (at most 1 s) or when nothing more comes.
            if error == nil || error?.code == .noSuchInterface {
                let deadline = ContinuousClock.now.advanced(
                    by: .ringDrainBound(blockTimeoutMilliseconds: source.configuration.blockRetireTimeoutMilliseconds))
                while true {
                    let left = ContinuousClock.now.duration(to: deadline).pollMilliseconds
                    guard left > 0 else { break }
                    do throws(CaptureSourceError) {
                        let n = try source.poll(timeoutMilliseconds: Int32(clamping: left), preparing: worker.preparesAhead,
                                                prepare: { worker.prepare($0) }) { worker.process($0) }
                        if n == 0 { break }
                        worker.pollEnded(delivered: n)
                    } catch {
                        break
                    }
                }
            }
            statistics = source.statistics
            vlanTagsRestored = source.vlanTagsRestored
            result = worker.finish()
            stopping.active.subtract(1, ordering: .releasing)
        }
    }
}

/// The stop request shared by a runner and its threads.
final class StopFlag: Sendable {
    let flag = Atomic<Bool>(false)
    /// Member threads whose loop has not ended.
    let active: Atomic<Int>
    init(active: Int) { self.active = Atomic(active) }
}
