// Loads from borrowed bytes. Every packet field in CaptureCore is read through these,
// so bounds are checked in one place: callers validate lengths before they load.

extension RawSpan {
    /// The byte at `offset`.
    @inlinable @inline(__always)
    func uint8(at offset: Int) -> UInt8 {
        unsafe unsafeLoadUnaligned(fromByteOffset: offset, as: UInt8.self)
    }

    /// A big-endian (network order) 16-bit value at `offset`.
    @inlinable @inline(__always)
    func bigEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: unsafe unsafeLoadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// A big-endian (network order) 32-bit value at `offset`.
    @inlinable @inline(__always)
    func bigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: unsafe unsafeLoadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// A big-endian (network order) 64-bit value at `offset`.
    @inlinable @inline(__always)
    func bigEndianUInt64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: unsafe unsafeLoadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// A 16-bit value at `offset` in the given byte order.
    @inlinable @inline(__always)
    func uint16(at offset: Int, bigEndian: Bool) -> UInt16 {
        let raw = unsafe unsafeLoadUnaligned(fromByteOffset: offset, as: UInt16.self)
        return bigEndian ? UInt16(bigEndian: raw) : UInt16(littleEndian: raw)
    }

    /// A 32-bit value at `offset` in the given byte order.
    @inlinable @inline(__always)
    func uint32(at offset: Int, bigEndian: Bool) -> UInt32 {
        let raw = unsafe unsafeLoadUnaligned(fromByteOffset: offset, as: UInt32.self)
        return bigEndian ? UInt32(bigEndian: raw) : UInt32(littleEndian: raw)
    }

    /// A little-endian 32-bit value at `offset` (BSD loopback headers, pcap headers).
    @inlinable @inline(__always)
    func littleEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(littleEndian: unsafe unsafeLoadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// A 64-bit value at `offset` in the given byte order (pcapng options such as `if_tsoffset`).
    @inlinable @inline(__always)
    func uint64(at offset: Int, bigEndian: Bool) -> UInt64 {
        let raw = unsafe unsafeLoadUnaligned(fromByteOffset: offset, as: UInt64.self)
        return bigEndian ? UInt64(bigEndian: raw) : UInt64(littleEndian: raw)
    }
}
