/// One packet borrowed from a capture file: no bytes are copied.
///
/// Valid only while the reader that lent it is not advanced; copy what must outlive it
/// (e.g. into a flow key). `bytes` holds the captured bytes (`capturedLength`), which may be
/// fewer than `originalLength` when the capture was cut at a snap length.
public struct PacketRecord: ~Escapable {
    /// The captured bytes, starting at the link-layer header.
    public let bytes: RawSpan
    /// Length of the packet on the wire; normally `>= bytes.byteCount`, but files can lie.
    public let originalLength: Int
    /// Capture time, already converted to nanoseconds and offset by `if_tsoffset`.
    /// pcapng Simple Packet Blocks carry no timestamp and read as ``Timestamp/zero``.
    public let timestamp: Timestamp
    /// Link-layer header type of the interface the packet was captured on.
    public let linkType: LinkType
    /// Index into ``CaptureFileReader/interfaces``, numbered across all pcapng sections
    /// (0 for classic pcap).
    public let interfaceIndex: Int
    /// Inbound/outbound from `epb_flags`, ``PacketDirection/unknown`` when absent.
    public let direction: PacketDirection
    /// The raw `epb_flags` (or obsolete `pack_flags`) value, 0 when absent.
    public let flags: UInt32
    /// Byte offset of the packet's record or block in the file.
    public let fileOffset: Int

    @inlinable @_lifetime(copy bytes)
    public init(bytes: RawSpan, originalLength: Int, timestamp: Timestamp, linkType: LinkType,
                interfaceIndex: Int, direction: PacketDirection = .unknown, flags: UInt32 = 0, fileOffset: Int = 0) {
        self.bytes = bytes
        self.originalLength = originalLength
        self.timestamp = timestamp
        self.linkType = linkType
        self.interfaceIndex = interfaceIndex
        self.direction = direction
        self.flags = flags
        self.fileOffset = fileOffset
    }

    /// Number of captured bytes.
    @inlinable public var capturedLength: Int { bytes.byteCount }

    /// `true` when fewer bytes were captured than were on the wire.
    @inlinable public var isTruncated: Bool { bytes.byteCount < originalLength }
}
