/// Byte order of a classic pcap file or of one pcapng section.
public enum CaptureByteOrder: Hashable, Sendable, CustomStringConvertible {
    case littleEndian
    case bigEndian

    public var description: String { self == .bigEndian ? "BE" : "LE" }
}

/// Units of a capture file's timestamps: `10^-exponent` or `2^-exponent` seconds.
///
/// Classic pcap files use microseconds (magic `a1b2c3d4`) or nanoseconds (magic `a1b23c4d`);
/// pcapng interfaces declare theirs with the `if_tsresol` option (default microseconds).
public struct TimestampResolution: Hashable, Sendable, CustomStringConvertible {
    /// `true` for `2^-exponent` seconds, `false` for `10^-exponent` seconds.
    public let isBinary: Bool
    /// The negated exponent: 6 for microseconds.
    public let exponent: UInt8
    /// Timestamp units in one second (10^6 for microseconds); never 0.
    public let unitsPerSecond: UInt64

    public static let microseconds = TimestampResolution(decimalExponent: 6)!
    public static let nanoseconds = TimestampResolution(decimalExponent: 9)!

    /// `10^-exponent` seconds; `nil` unless `0 ... 19` (10^19 is the largest power of ten in 64 bits).
    public init?(decimalExponent: Int) {
        guard (0...19).contains(decimalExponent) else { return nil }
        var units: UInt64 = 1
        for _ in 0..<decimalExponent { units &*= 10 }
        self.isBinary = false
        self.exponent = UInt8(decimalExponent)
        self.unitsPerSecond = units
    }

    /// `2^-exponent` seconds; `nil` unless `0 ... 63`.
    public init?(binaryExponent: Int) {
        guard (0...63).contains(binaryExponent) else { return nil }
        self.isBinary = true
        self.exponent = UInt8(binaryExponent)
        self.unitsPerSecond = 1 << UInt64(binaryExponent)
    }

    /// The resolution named by a pcapng `if_tsresol` option value: bit 7 selects base 2,
    /// the low 7 bits are the exponent. `nil` when the units do not fit in 64 bits.
    public init?(pcapngOptionValue value: UInt8) {
        if value & 0x80 != 0 {
            self.init(binaryExponent: Int(value & 0x7F))
        } else {
            self.init(decimalExponent: Int(value))
        }
    }

    /// The pcapng `if_tsresol` option value.
    public var pcapngOptionValue: UInt8 { isBinary ? 0x80 | exponent : exponent }

    /// "usec", "nsec", or "10^-n s" / "2^-n s" for other resolutions.
    public var description: String {
        if self == .microseconds { return "usec" }
        if self == .nanoseconds { return "nsec" }
        return isBinary ? "2^-\(exponent) s" : "10^-\(exponent) s"
    }

    /// Nanoseconds in `units` of this resolution, rounded down, saturating at `UInt64.max`.
    @inlinable
    public func nanoseconds(fromUnits units: UInt64) -> UInt64 {
        Self._nanoseconds(units, unitsPerSecond: unitsPerSecond)
    }

    /// Units of this resolution in `nanoseconds`, rounded down, saturating at `UInt64.max`.
    @inlinable
    public func units(fromNanoseconds nanoseconds: UInt64) -> UInt64 {
        let u = unitsPerSecond
        if u == 1_000_000_000 { return nanoseconds }
        if u == 1_000_000 { return nanoseconds / 1000 }
        let (high, low) = nanoseconds.multipliedFullWidth(by: u)
        if high >= 1_000_000_000 { return .max }
        return UInt64(1_000_000_000).dividingFullWidth((high, low)).quotient
    }

    @inlinable @inline(__always)
    static func _nanoseconds(_ units: UInt64, unitsPerSecond u: UInt64) -> UInt64 {
        if u == 1_000_000_000 { return units }
        if u == 1_000_000 {
            let (r, overflow) = units.multipliedReportingOverflow(by: 1000)
            return overflow ? .max : r
        }
        let (high, low) = units.multipliedFullWidth(by: 1_000_000_000)
        if high >= u { return .max }
        return u.dividingFullWidth((high, low)).quotient
    }
}

/// Direction of a packet relative to the capturing interface (pcapng `epb_flags` bits 0-1).
public enum PacketDirection: UInt8, Hashable, Sendable, CustomStringConvertible {
    case unknown = 0
    case inbound = 1
    case outbound = 2

    /// The direction in the low two bits of `epb_flags`; the invalid value 3 reads as unknown.
    @inlinable public init(pcapngFlags flags: UInt32) {
        self = PacketDirection(rawValue: UInt8(flags & 3)) ?? .unknown
    }

    public var description: String {
        switch self {
        case .unknown: "unknown"
        case .inbound: "inbound"
        case .outbound: "outbound"
        }
    }
}

/// The counters of a pcapng Interface Statistics Block (ISB); absent options are `nil`.
public struct InterfaceStatistics: Hashable, Sendable {
    /// When the statistics were taken.
    public var timestamp: Timestamp
    /// Packets received by the interface since capture start (`isb_ifrecv`).
    public var received: UInt64?
    /// Packets dropped by the interface for lack of resources (`isb_ifdrop`).
    public var interfaceDropped: UInt64?
    /// Packets accepted by the capture filter (`isb_filteraccept`).
    public var filterAccepted: UInt64?
    /// Packets dropped by the operating system (`isb_osdrop`).
    public var osDropped: UInt64?
    /// Packets delivered to the user (`isb_usrdeliv`).
    public var deliveredToUser: UInt64?

    public init(timestamp: Timestamp = .zero, received: UInt64? = nil, interfaceDropped: UInt64? = nil,
                filterAccepted: UInt64? = nil, osDropped: UInt64? = nil, deliveredToUser: UInt64? = nil) {
        self.timestamp = timestamp
        self.received = received
        self.interfaceDropped = interfaceDropped
        self.filterAccepted = filterAccepted
        self.osDropped = osDropped
        self.deliveredToUser = deliveredToUser
    }
}

/// One capture interface: the whole file for classic pcap, one Interface Description
/// Block (IDB) for pcapng.
public struct CaptureInterface: Hashable, Sendable {
    /// Link-layer header type of every packet on this interface.
    public var linkType: LinkType
    /// Maximum captured bytes per packet; 0 means unlimited (pcapng only).
    public var snapLength: UInt32
    /// `if_name`, e.g. "eth0".
    public var name: String?
    /// `if_description`.
    public var description: String?
    /// `opt_comment` values, in file order.
    public var comments: [String]
    /// Units of this interface's timestamps (`if_tsresol`).
    public var timestampResolution: TimestampResolution
    /// Seconds added to every timestamp (`if_tsoffset`); readers already apply it.
    public var timestampOffsetSeconds: Int64
    /// `if_fcslen`: bytes of frame check sequence at the end of each frame, when stated.
    public var fcsLength: UInt8?
    /// `if_os`.
    public var operatingSystem: String?
    /// `if_hardware`.
    public var hardware: String?
    /// Zero-based pcapng section the interface was declared in.
    public var section: Int
    /// The counters of the last Interface Statistics Block (ISB) read for this interface.
    public var statistics: InterfaceStatistics?

    public init(linkType: LinkType, snapLength: UInt32 = 0, name: String? = nil, description: String? = nil,
                comments: [String] = [], timestampResolution: TimestampResolution = .nanoseconds,
                timestampOffsetSeconds: Int64 = 0, fcsLength: UInt8? = nil, operatingSystem: String? = nil,
                hardware: String? = nil, section: Int = 0, statistics: InterfaceStatistics? = nil) {
        self.linkType = linkType
        self.snapLength = snapLength
        self.name = name
        self.description = description
        self.comments = comments
        self.timestampResolution = timestampResolution
        self.timestampOffsetSeconds = timestampOffsetSeconds
        self.fcsLength = fcsLength
        self.operatingSystem = operatingSystem
        self.hardware = hardware
        self.section = section
        self.statistics = statistics
    }
}

/// One pcapng section (Section Header Block, SHB); a classic pcap file has one, without options.
public struct CaptureSection: Hashable, Sendable {
    public var byteOrder: CaptureByteOrder
    /// `major.minor` of the format (2.4 for pcap, 1.0 for pcapng).
    public var versionMajor: UInt16
    public var versionMinor: UInt16
    /// Byte offset of the section header.
    public var offset: Int
    /// Index in ``CaptureFileReader/interfaces`` of this section's first interface.
    public var firstInterface: Int
    /// `opt_comment` values, in file order.
    public var comments: [String]
    /// `shb_hardware`, `shb_os`, `shb_userappl`.
    public var hardware: String?
    public var operatingSystem: String?
    public var userApplication: String?
}

/// The container format of a capture file.
public enum CaptureFileFormat: Hashable, Sendable, CustomStringConvertible {
    /// Classic pcap (libpcap) with one byte order and one timestamp resolution.
    case pcap(byteOrder: CaptureByteOrder, resolution: TimestampResolution)
    /// pcapng; each section has its own byte order (this is the first section's) and each
    /// interface its own resolution (see ``CaptureInterface/timestampResolution``).
    case pcapng(byteOrder: CaptureByteOrder)

    public var byteOrder: CaptureByteOrder {
        switch self {
        case .pcap(let order, _), .pcapng(let order): order
        }
    }

    public var description: String {
        switch self {
        case .pcap(let order, let resolution): "pcap \(order) \(resolution)"
        case .pcapng(let order): "pcapng \(order)"
        }
    }
}
