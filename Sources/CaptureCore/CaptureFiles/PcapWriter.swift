/// Writes a classic pcap file (version 2.4, little-endian, one link type).
///
/// Output is buffered (128 KiB) and written when the buffer fills, on ``flush()`` and on
/// ``close()``; `deinit` flushes too but cannot report errors, so call `close()`.
/// Writing a packet allocates nothing.
///
/// ```
/// file header (24 bytes):  a1b2c3d4 or a1b23c4d | 2 | 4 | thiszone 0 | sigfigs 0 | snaplen | linktype
/// per packet (16 bytes):   ts_sec | ts_usec or ts_nsec | caplen | len    then caplen bytes
/// ```
public struct PcapWriter: ~Copyable {
    var _output: _FileOutput
    /// Link type written in the file header.
    public let linkType: LinkType
    /// Bytes kept per packet; longer packets are cut (their original length is kept).
    public let snapLength: UInt32
    /// Microseconds (magic `a1b2c3d4`) or nanoseconds (magic `a1b23c4d`).
    public let resolution: TimestampResolution
    /// Packets written so far.
    public private(set) var packetCount = 0

    /// Creates (or truncates) the file at `path` and writes the file header.
    /// - Parameters:
    ///   - linkType: the link type of every packet (the header field's full 32 bits are written).
    ///   - snapLength: maximum bytes kept per packet; must be positive.
    ///   - resolution: ``TimestampResolution/microseconds`` or ``TimestampResolution/nanoseconds``.
    /// - Throws: ``CaptureFileError`` with ``CaptureFileError/Code/cannotOpen(errno:)``.
    public init(path: String, linkType: LinkType, snapLength: UInt32 = 262_144,
                resolution: TimestampResolution = .microseconds) throws(CaptureFileError) {
        try self.init(output: _FileOutput(path: path), linkType: linkType, snapLength: snapLength, resolution: resolution)
    }

    /// Writes to an open descriptor, e.g. 1 to stream into `wireshark -k -i -`.
    /// - Parameters:
    ///   - name: used in error messages.
    ///   - closeWhenDone: whether ``close()`` closes the descriptor.
    public init(fileDescriptor: Int32, name: String? = nil, closeWhenDone: Bool = false, linkType: LinkType,
                snapLength: UInt32 = 262_144, resolution: TimestampResolution = .microseconds) throws(CaptureFileError) {
        let output = _FileOutput(fileDescriptor: fileDescriptor, name: name ?? "file descriptor \(fileDescriptor)",
                                 closesDescriptor: closeWhenDone)
        try self.init(output: output, linkType: linkType, snapLength: snapLength, resolution: resolution)
    }

    init(output: consuming _FileOutput, linkType: LinkType, snapLength: UInt32,
         resolution: TimestampResolution) throws(CaptureFileError) {
        precondition(resolution == .microseconds || resolution == .nanoseconds,
                     "classic pcap stores microseconds or nanoseconds, not \(resolution)")
        precondition(snapLength > 0, "snap length must be positive")
        try output.appendUInt32(resolution == .nanoseconds ? 0xA1B2_3C4D : 0xA1B2_C3D4)
        try output.appendUInt16(2)
        try output.appendUInt16(4)
        try output.appendUInt32(0)  // thiszone
        try output.appendUInt32(0)  // sigfigs
        try output.appendUInt32(snapLength)
        try output.appendUInt32(linkType.rawValue)
        self._output = output
        self.linkType = linkType
        self.snapLength = snapLength
        self.resolution = resolution
    }

    /// Appends one packet record.
    /// - Parameters:
    ///   - bytes: the captured bytes; those beyond ``snapLength`` are not written.
    ///   - originalLength: length on the wire (default `bytes.byteCount`); never written
    ///     smaller than the captured length. Seconds beyond 2106 wrap, as the format does.
    public mutating func write(bytes: RawSpan, originalLength: Int? = nil, timestamp: Timestamp) throws(CaptureFileError) {
        let captured = min(bytes.byteCount, Int(snapLength))
        let original = max(originalLength ?? bytes.byteCount, captured)
        let fraction = timestamp.nanoseconds % 1_000_000_000
        try _output.reserve(16)
        try _output.appendUInt32(UInt32(truncatingIfNeeded: timestamp.seconds))
        try _output.appendUInt32(UInt32(resolution == .nanoseconds ? fraction : fraction / 1000))
        try _output.appendUInt32(UInt32(captured))
        try _output.appendUInt32(UInt32(clamping: original))
        try _output.append(bytes.extracting(first: captured))
        packetCount += 1
    }

    /// Appends a packet read from another file (its bytes, original length and timestamp).
    public mutating func write(_ packet: borrowing PacketRecord) throws(CaptureFileError) {
        try write(bytes: packet.bytes, originalLength: packet.originalLength, timestamp: packet.timestamp)
    }

    /// Writes out buffered records (e.g. so a live reader sees them).
    public mutating func flush() throws(CaptureFileError) {
        try _output.flush()
    }

    /// Flushes and, if owned, closes the file.
    public consuming func close() throws(CaptureFileError) {
        try _output.close()
    }
}
