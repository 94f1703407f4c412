public import CaptureCore

/// A small JSON text builder that appends UTF-8 into a reusable byte buffer.
///
/// Flow logs are written per flow, at rates of 10⁵ flows per second, so this avoids
/// Foundation's encoders and intermediate strings: numbers are formatted in place.
public struct JSONBuffer: Sendable {
    public var bytes: [UInt8] = []
    @usableFromInline var needsComma = false

    public init(capacity: Int = 4096) { bytes.reserveCapacity(capacity) }

    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        needsComma = false
    }

    public mutating func beginObject() {
        comma()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }
    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }
    public mutating func beginObject(_ key: StaticString) {
        self.key(key)
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }
    public mutating func beginArray(_ key: StaticString) {
        self.key(key)
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }
    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }
    public mutating func newline() {
        bytes.append(UInt8(ascii: "\n"))
        needsComma = false
    }

    @usableFromInline mutating func comma() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        needsComma = true
    }

    mutating func key(_ key: StaticString) {
        comma()
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    public mutating func field(_ key: StaticString, _ value: UInt64) {
        self.key(key)
        appendInteger(value)
        needsComma = true
    }
    public mutating func field(_ key: StaticString, _ value: Int) {
        self.key(key)
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        appendInteger(value.magnitude.toUInt64)
        needsComma = true
    }
    public mutating func field(_ key: StaticString, _ value: Bool) {
        self.key(key)
        append(value ? "true" : "false")
        needsComma = true
    }
    public mutating func field(_ key: StaticString, _ value: String) {
        self.key(key)
        appendQuoted(value)
        needsComma = true
    }
    public mutating func field(_ key: StaticString, _ value: StaticString) {
        self.key(key)
        bytes.append(UInt8(ascii: "\""))
        value.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }
    public mutating func nullField(_ key: StaticString) {
        self.key(key)
        append("null")
        needsComma = true
    }
    /// A fixed-point decimal: `value / 10^scale` (timestamps in seconds with nanoseconds).
    public mutating func decimalField(_ key: StaticString, _ value: UInt64, scale: Int) {
        self.key(key)
        var divisor: UInt64 = 1
        for _ in 0..<scale { divisor *= 10 }
        appendInteger(value / divisor)
        if scale > 0 {
            bytes.append(UInt8(ascii: "."))
            var frac = value % divisor
            var digits = [UInt8](repeating: UInt8(ascii: "0"), count: scale)
            var i = scale - 1
            while frac > 0 && i >= 0 {
                digits[i] = UInt8(ascii: "0") + UInt8(frac % 10)
                frac /= 10
                i -= 1
            }
            bytes.append(contentsOf: digits)
        }
        needsComma = true
    }

    /// An address as a JSON string, formatted without intermediate strings for IPv4.
    public mutating func field(_ key: StaticString, _ value: IPAddress) {
        self.key(key)
        bytes.append(UInt8(ascii: "\""))
        appendAddress(value)
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }

    public mutating func element(_ value: String) {
        comma()
        appendQuoted(value)
    }

    // MARK: Raw text (CSV and other line formats share the number formatting)

    /// Appends `value` in decimal.
    public mutating func appendDecimal(_ value: UInt64) { appendInteger(value) }
    public mutating func appendRaw(_ s: StaticString) { append(s) }
    public mutating func appendRaw(_ s: String) { bytes.append(contentsOf: s.utf8) }
    public mutating func appendByte(_ b: UInt8) { bytes.append(b) }

    /// Dotted quad for IPv4 (no allocation), RFC 5952 text for IPv6.
    public mutating func appendAddress(_ a: IPAddress) {
        guard a.isIPv4 else {
            bytes.append(contentsOf: a.description.utf8)
            return
        }
        let v = a.ipv4Value
        appendInteger(UInt64(v >> 24))
        bytes.append(UInt8(ascii: "."))
        appendInteger(UInt64((v >> 16) & 0xFF))
        bytes.append(UInt8(ascii: "."))
        appendInteger(UInt64((v >> 8) & 0xFF))
        bytes.append(UInt8(ascii: "."))
        appendInteger(UInt64(v & 0xFF))
    }

    mutating func append(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    @usableFromInline mutating func appendInteger(_ value: UInt64) {
        if value < 10 {
            bytes.append(UInt8(ascii: "0") &+ UInt8(value))
            return
        }
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits &+= 1
        }
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
        bytes.withUnsafeMutableBufferPointer { out in
            var v = value
            var i = start &+ digits &- 1
            while v > 0 {
                unsafe out[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10)
                v /= 10
                i &-= 1
            }
        }
    }

    /// Appends `s` as a JSON string: quotes, backslashes and control characters escaped.
    public mutating func appendQuoted(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): append("\\\"")
            case UInt8(ascii: "\\"): append("\\\\")
            case UInt8(ascii: "\n"): append("\\n")
            case UInt8(ascii: "\r"): append("\\r")
            case UInt8(ascii: "\t"): append("\\t")
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                append("\\u00")
                bytes.append(hex[Int(b >> 4)])
                bytes.append(hex[Int(b & 0xF)])
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension UInt {
    fileprivate var toUInt64: UInt64 { UInt64(self) }
}
