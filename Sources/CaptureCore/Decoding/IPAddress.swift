/// An IPv4 or IPv6 address in 16 bytes, as two big-endian halves.
///
/// IPv4 addresses are stored IPv4-mapped (`::ffff:a.b.c.d`), so one fixed-size type keys
/// every flow table and ordering is the numeric order of the 16 network-order bytes.
public struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Bytes 0–7 of the address, as a big-endian integer.
    public var high: UInt64
    /// Bytes 8–15 of the address, as a big-endian integer.
    public var low: UInt64

    @inlinable public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An IPv4 address from its 32-bit host-order value (`10.0.0.1` is `0x0A00_0001`).
    @inlinable public init(ipv4 value: UInt32) {
        high = 0
        low = 0x0000_FFFF_0000_0000 | UInt64(value)
    }

    @inlinable public static var zero: IPAddress { IPAddress(high: 0, low: 0) }

    @inlinable public var isIPv4: Bool { high == 0 && (low >> 32) == 0x0000_FFFF }
    /// The IPv4 value (host order); meaningful only when ``isIPv4``.
    @inlinable public var ipv4Value: UInt32 { UInt32(truncatingIfNeeded: low) }

    @inlinable public static func < (a: IPAddress, b: IPAddress) -> Bool {
        a.high != b.high ? a.high < b.high : a.low < b.low
    }

    /// Parses dotted-quad IPv4 or RFC 4291 / RFC 5952 IPv6 text (`::`, embedded IPv4). Nil if invalid.
    public init?(_ text: some StringProtocol) {
        if !text.contains(":") {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var v: UInt32 = 0
            for p in parts {
                guard !p.isEmpty, p.count <= 3, let n = UInt32(p), n <= 255 else { return nil }
                v = v << 8 | n
            }
            self.init(ipv4: v)
            return
        }
        var groups: [UInt16] = []
        var tailStart: Int? = nil
        let halves = text.components(separatedByString: "::")
        guard halves.count <= 2 else { return nil }
        func parse(_ s: Substring, into g: inout [UInt16], allowV4: Bool) -> Bool {
            if s.isEmpty { return true }
            let fields = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, f) in fields.enumerated() {
                if allowV4, i == fields.count - 1, f.contains(".") {
                    guard let v4 = IPAddress(f), v4.isIPv4 else { return false }
                    g.append(UInt16(v4.ipv4Value >> 16))
                    g.append(UInt16(v4.ipv4Value & 0xFFFF))
                    continue
                }
                guard !f.isEmpty, f.count <= 4, let n = UInt16(f, radix: 16) else { return false }
                g.append(n)
            }
            return true
        }
        guard parse(halves[0], into: &groups, allowV4: halves.count == 1) else { return nil }
        if halves.count == 2 {
            tailStart = groups.count
            guard parse(halves[1], into: &groups, allowV4: true) else { return nil }
            guard groups.count <= 7 else { return nil }
            let fill = [UInt16](repeating: 0, count: 8 - groups.count)
            groups.insert(contentsOf: fill, at: tailStart!)
        }
        guard groups.count == 8 else { return nil }
        var hi: UInt64 = 0, lo: UInt64 = 0
        for i in 0..<4 { hi = hi << 16 | UInt64(groups[i]) }
        for i in 4..<8 { lo = lo << 16 | UInt64(groups[i]) }
        self.init(high: hi, low: lo)
    }

    /// Dotted quad for IPv4, RFC 5952 text for IPv6.
    public var description: String {
        if isIPv4 {
            let v = ipv4Value
            return "\(v >> 24).\((v >> 16) & 0xFF).\((v >> 8) & 0xFF).\(v & 0xFF)"
        }
        var g = [UInt16](repeating: 0, count: 8)
        for i in 0..<4 {
            g[i] = UInt16(truncatingIfNeeded: high >> UInt64(48 - 16 * i))
            g[i + 4] = UInt16(truncatingIfNeeded: low >> UInt64(48 - 16 * i))
        }
        // Longest run of two or more zero groups becomes "::" (first one on ties).
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if g[i] == 0 {
                var j = i
                while j < 8 && g[j] == 0 { j += 1 }
                if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                i = j
            } else { i += 1 }
        }
        func hex(_ r: Range<Int>) -> String { r.map { String(g[$0], radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLen)..<8)
    }
}

extension StringProtocol {
    fileprivate func components(separatedByString sep: String) -> [Substring] {
        var out: [Substring] = []
        var rest = Substring(self)
        while let r = rest.firstRange(of: sep) {
            out.append(rest[rest.startIndex..<r.lowerBound])
            rest = rest[r.upperBound...]
        }
        out.append(rest)
        return out
    }
}
