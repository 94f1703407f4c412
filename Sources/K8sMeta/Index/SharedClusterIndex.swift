internal import Synchronization
public import CaptureCore

/// A ``ClusterIndex`` shared between one writer (the informers) and any number of readers.
///
/// Writers change it under a mutex with ``update(_:)``. Readers take a ``snapshot()`` — a copy
/// of the value, which shares the tables until the writer next changes them — and look up
/// lock-free on it; a flow enricher takes a fresh snapshot per batch of flows (or every few
/// hundred milliseconds), not per lookup. ``identity(of:port:at:)`` here takes the lock per
/// call and is meant for occasional lookups.
public final class SharedClusterIndex: Sendable {
    private let state: Mutex<ClusterIndex>
    private let generationCounter = Atomic<UInt64>(0)

    public init(_ index: ClusterIndex = ClusterIndex()) {
        state = Mutex(index)
    }

    /// Changes the index under the lock (apply informer events here).
    public func update<R: Sendable>(_ body: (inout ClusterIndex) throws -> R) rethrows -> R {
        let result = try state.withLock { try body(&$0) }
        generationCounter.add(1, ordering: .releasing)
        return result
    }

    /// The current state, as an independent value; cheap (reference counts), never changes.
    public func snapshot() -> ClusterIndex { state.withLock { $0 } }

    /// Increases after every ``update(_:)``: a reader holding a snapshot of an older generation
    /// can take a new one.
    public var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    /// One lookup under the lock.
    public func identity(of address: IPAddress, port: UInt16 = 0, at time: Timestamp? = nil) -> EndpointIdentity {
        state.withLock { $0.identity(of: address, port: port, at: time) }
    }
}
