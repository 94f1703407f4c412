public import CaptureCore

/// An IPv4 or IPv6 prefix such as `10.244.0.0/16` or `fd00:10:244::/56`.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    /// The network address (host bits cleared).
    public let network: IPAddress
    /// Prefix length within the address family (0–32 for IPv4, 0–128 for IPv6).
    public let prefixLength: Int
    private let maskHigh: UInt64
    private let maskLow: UInt64

    /// A prefix of `prefixLength` bits of `address` (host bits are cleared). Nil if the length
    /// is out of range for the family.
    public init?(address: IPAddress, prefixLength: Int) {
        let bits = address.isIPv4 ? 96 + prefixLength : prefixLength
        guard prefixLength >= 0, prefixLength <= (address.isIPv4 ? 32 : 128) else { return nil }
        maskHigh = bits >= 64 ? .max : (bits == 0 ? 0 : ~UInt64(0) << (64 - bits))
        maskLow = bits <= 64 ? 0 : (bits >= 128 ? .max : ~UInt64(0) << (128 - bits))
        network = IPAddress(high: address.high & maskHigh, low: address.low & maskLow)
        self.prefixLength = prefixLength
    }

    /// Parses `a.b.c.d/n` or `v6/n`; a bare address is a host prefix. Nil if invalid.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(parts[0]) else { return nil }
        let length: Int
        if parts.count == 2 {
            guard let n = Int(parts[1]) else { return nil }
            length = n
        } else {
            length = address.isIPv4 ? 32 : 128
        }
        self.init(address: address, prefixLength: length)
    }

    /// True when `address` is inside this prefix (and of the same family).
    public func contains(_ address: IPAddress) -> Bool {
        address.isIPv4 == network.isIPv4 && address.high & maskHigh == network.high && address.low & maskLow == network.low
    }

    public var description: String { "\(network)/\(prefixLength)" }
}
