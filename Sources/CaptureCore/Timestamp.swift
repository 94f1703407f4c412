/// A point in time as nanoseconds since the Unix epoch (UTC).
///
/// Capture files carry micro- or nanosecond resolution (pcapng: any `if_tsresol`);
/// readers convert to nanoseconds. Arithmetic wraps nowhere: 64 bits of nanoseconds
/// reach the year 2554.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64
    @inlinable public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }
    @inlinable public init(seconds: UInt64, microseconds: UInt64) {
        self.nanoseconds = seconds &* 1_000_000_000 &+ microseconds &* 1000
    }
    @inlinable public init(seconds: UInt64, nanoseconds: UInt64) {
        self.nanoseconds = seconds &* 1_000_000_000 &+ nanoseconds
    }
    @inlinable public static var zero: Timestamp { Timestamp(nanoseconds: 0) }

    @inlinable public var seconds: UInt64 { nanoseconds / 1_000_000_000 }
    @inlinable public var microseconds: UInt64 { nanoseconds / 1000 }
    @inlinable public static func < (a: Timestamp, b: Timestamp) -> Bool { a.nanoseconds < b.nanoseconds }

    /// Nanoseconds from `earlier` to `self`, 0 when `earlier` is later (capture clocks can step back).
    @inlinable public func nanoseconds(since earlier: Timestamp) -> UInt64 {
        nanoseconds >= earlier.nanoseconds ? nanoseconds &- earlier.nanoseconds : 0
    }

    /// `seconds.fraction` with nine decimals.
    public var description: String {
        let frac = String(nanoseconds % 1_000_000_000)
        return "\(seconds).\(String(repeating: "0", count: 9 - frac.count))\(frac)"
    }
}
