public import CaptureCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A resource the ``ClusterIndex`` reads: lets code generic over the resource type (an informer
/// for any ``ResourceKind``) apply its events without a switch.
public protocol IndexableResource: KubeResource {
    /// Applies `event` to `index` as observed at `time`.
    static func apply(_ event: WatchEvent<Self>, to index: inout ClusterIndex, at time: Timestamp)
}

extension Pod: IndexableResource {
    public static func apply(_ event: WatchEvent<Pod>, to index: inout ClusterIndex, at time: Timestamp) {
        index.apply(event, at: time)
    }
}

extension Service: IndexableResource {
    public static func apply(_ event: WatchEvent<Service>, to index: inout ClusterIndex, at time: Timestamp) {
        index.apply(event, at: time)
    }
}

extension EndpointSlice: IndexableResource {
    public static func apply(_ event: WatchEvent<EndpointSlice>, to index: inout ClusterIndex, at time: Timestamp) {
        index.apply(event, at: time)
    }
}

extension Node: IndexableResource {
    public static func apply(_ event: WatchEvent<Node>, to index: inout ClusterIndex, at time: Timestamp) {
        index.apply(event, at: time)
    }
}

extension Workload: IndexableResource {
    public static func apply(_ event: WatchEvent<Workload<Marker>>, to index: inout ClusterIndex, at time: Timestamp) {
        index.apply(event, at: time)
    }
}

extension ClusterIndex {
    /// Applies an event of any indexed resource type, observed at `time`.
    public mutating func apply<R: IndexableResource>(event: WatchEvent<R>, at time: Timestamp) {
        R.apply(event, to: &self, at: time)
    }

    /// The wall-clock time now (CLOCK_REALTIME), the time base of capture timestamps: what an
    /// informer passes as the moment it observed an event.
    public static func wallClock() -> Timestamp {
        var ts = timespec()
        _ = unsafe clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(seconds: UInt64(max(ts.tv_sec, 0)), nanoseconds: UInt64(max(ts.tv_nsec, 0)))
    }
}

extension SharedClusterIndex {
    /// Applies one event under the lock, observed at `time` (default: now, ``ClusterIndex/wallClock()``).
    public func apply<R: IndexableResource>(_ event: WatchEvent<R>, at time: Timestamp = ClusterIndex.wallClock()) {
        update { $0.apply(event: event, at: time) }
    }
}
