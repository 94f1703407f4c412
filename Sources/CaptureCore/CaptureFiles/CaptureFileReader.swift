/// Reads classic pcap and pcapng files from a read-only memory map, lending each packet
/// without copying it.
///
/// ```swift
/// var reader = try CaptureFileReader(path: "capture.pcapng")
/// while try reader.advance() {
///     let packet = reader.packet          // borrowed; valid until the next advance()
///     decode(packet.bytes, packet.linkType)
/// }
/// ```
///
/// Classic pcap (magic `a1b2c3d4` microseconds, `a1b23c4d` nanoseconds, either byte order,
/// version 2.x): one interface, link type from the low 16 bits of the header's link-type
/// field (FCS bits ignored, reserved bits rejected as libpcap does).
///
/// pcapng: every section (SHB) with its own byte order; Interface Description (IDB),
/// Enhanced (EPB), Simple (SPB) and obsolete (type 2) Packet Blocks, Interface Statistics
/// (ISB); other blocks (NRB, DSB, custom, ...) are skipped. Interfaces are numbered across
/// sections in file order.
///
/// Errors: a truncated or corrupt file delivers every packet before the bad record or
/// block, then `advance()` throws a ``CaptureFileError`` naming the file and the byte offset
/// (and throws it again if called again). Lengths are checked before every load, so hostile
/// files cannot make the reader trap, loop or read out of bounds, and nothing is allocated
/// from lengths the file claims.
public struct CaptureFileReader: ~Copyable {
    @usableFromInline let _file: MappedCaptureFile
    @usableFromInline var _state: _ReaderState
    /// Calls of ``poll(timeoutMilliseconds:_:)`` that delivered packets (``CaptureStatistics/batches``).
    @usableFromInline var _pollBatches: UInt64 = 0

    /// Maps and opens the capture file at `path` and reads its headers (for pcapng, every
    /// block before the first packet).
    /// - Throws: ``CaptureFileError`` when the file cannot be opened, is not a capture file,
    ///   or its file header (pcapng: first section header) is unsupported, truncated or
    ///   corrupt. Faults in later blocks are thrown by the first ``advance()``.
    public init(path: String) throws(CaptureFileError) {
        try self.init(file: MappedCaptureFile(path: path))
    }

    /// Reads a capture file held in memory (fuzzers, tests); `name` is used in errors.
    public init(bytes: [UInt8], name: String) throws(CaptureFileError) {
        try self.init(file: MappedCaptureFile(bytes: bytes, name: name))
    }

    /// Reads from an existing mapping, taking ownership of it.
    public init(file: consuming MappedCaptureFile) throws(CaptureFileError) {
        var state = try _ReaderState(file.bytes, name: file.name)
        if state.isPcapNG {
            do {
                try state.readBlocks(file.bytes, untilPacket: true)
            } catch {
                // A bad first section header rejects the file; later faults surface from advance().
                guard !state.sections.isEmpty else { throw error }
                state.error = error
            }
        }
        _state = state
        _file = file
    }

    /// The path or name given when opening, as used in error messages.
    public var fileName: String { _state.fileName }
    /// The container format; for pcapng, the first section's byte order.
    public var format: CaptureFileFormat { _state.format }
    /// Every interface seen so far (pcapng IDBs are read as the reader reaches them; those
    /// before the first packet are read by `init`). Index with ``PacketRecord/interfaceIndex``.
    public var interfaces: [CaptureInterface] { _state.interfaces }
    /// Every section seen so far (one for classic pcap).
    public var sections: [CaptureSection] { _state.sections }
    /// Packets delivered so far.
    @inlinable public var packetCount: Int { _state.packetCount }
    /// Size of the file in bytes.
    public var fileSize: Int { _file.count }
    /// Bytes consumed so far: the offset of the next record or block (for progress bars).
    /// After `advance()` returns `true` this is the end of the current packet's record.
    @inlinable public var bytesRead: Int { _state.offset }

    // MARK: - Iteration

    /// Moves to the next packet.
    /// - Returns: `true` when ``packet`` now holds a packet, `false` at the clean end of the file.
    /// - Throws: ``CaptureFileError`` at the first truncated or corrupt record or block, after
    ///   every packet before it was delivered; later calls throw it again.
    @inlinable
    public mutating func advance() throws(CaptureFileError) -> Bool {
        guard !_state.isPcapNG else { return try _state.advancePcapNG(_file.bytes) }
        return try _state.advancePcap(_file.bytes)
    }

    /// The current packet, borrowed from the mapping.
    ///
    /// - Precondition: the last ``advance()`` returned `true`.
    @inlinable public var packet: PacketRecord {
        @_lifetime(borrow self) borrowing get {
            precondition(_state.hasCurrent, "CaptureFileReader.packet read without a current packet")
            let c = _state.current
            let bytes = _file.bytes.extracting(c.dataOffset ..< c.dataOffset &+ c.capturedLength)
            return PacketRecord(bytes: bytes, originalLength: c.originalLength, timestamp: c.timestamp,
                                linkType: c.linkType, interfaceIndex: c.interface,
                                direction: PacketDirection(pcapngFlags: c.flags), flags: c.flags,
                                fileOffset: c.blockOffset)
        }
    }

    /// Reads the next packet and lends it to `body`.
    /// - Returns: `false` at the clean end of the file (without calling `body`).
    @inlinable
    public mutating func nextPacket(_ body: (borrowing PacketRecord) -> Void) throws(CaptureFileError) -> Bool {
        guard try advance() else { return false }
        body(packet)
        return true
    }

    /// Lends every remaining packet to `body`, in file order.
    /// - Returns: the number of packets delivered by this call.
    /// - Throws: ``CaptureFileError`` after delivering every packet before the fault.
    @inlinable @discardableResult
    public mutating func forEachPacket(_ body: (borrowing PacketRecord) -> Void) throws(CaptureFileError) -> Int {
        var count = 0
        while try advance() {
            body(packet)
            count &+= 1
        }
        return count
    }

    /// `opt_comment` values of the current packet (pcapng EPB/OPB), in file order; empty
    /// for classic pcap and SPBs. Allocates; meant for off-hot-path use.
    public var packetComments: [String] {
        _state.packetComments(_file.bytes)
    }
}

/// Everything a reader knows besides the bytes: plain values, so that parsing can mutate it
/// while the mapping is borrowed.
@usableFromInline struct _ReaderState {
    let fileName: String
    var format: CaptureFileFormat
    var interfaces: [CaptureInterface]
    var sections: [CaptureSection]
    @usableFromInline var packetCount: Int
    @usableFromInline var offset: Int
    @usableFromInline let isPcapNG: Bool
    @usableFromInline var bigEndian: Bool
    @usableFromInline let pcapNanosecondsPerUnit: UInt64
    @usableFromInline let pcapLinkType: LinkType
    @usableFromInline var current: _CurrentPacket
    @usableFromInline var hasCurrent: Bool
    /// The file offset up to which ``prefetch(_:from:)`` has prefetched (both formats).
    @usableFromInline var prefetchedUpTo = 0
    /// How far ahead of the current record the file is prefetched, in bytes.
    @inlinable static var prefetchDistance: Int { 4096 }
    var clocks: [_InterfaceClock]
    var sectionFirstInterface: Int
    var error: CaptureFileError?
    /// Where the bytes the reader is given start in the whole input: 0 for a file, the
    /// window's start for ``CaptureStreamReader``. Offsets in errors and sections add it.
    var streamBase = 0

    /// Recognises the file and parses a classic pcap header (pcapng blocks come later).
    init(_ file: RawSpan, name: String) throws(CaptureFileError) {
        let header = try Self._fileHeader(file, name: name)
        let order: CaptureByteOrder = header.bigEndian ? .bigEndian : .littleEndian
        let resolution: TimestampResolution = header.nanosecondsPerUnit == 1 ? .nanoseconds : .microseconds
        fileName = name
        offset = header.dataOffset
        isPcapNG = header.isPcapNG
        bigEndian = header.bigEndian
        pcapNanosecondsPerUnit = header.nanosecondsPerUnit
        pcapLinkType = header.linkType
        current = _CurrentPacket()
        hasCurrent = false
        sectionFirstInterface = 0
        error = nil
        packetCount = 0
        if header.isPcapNG {
            format = .pcapng(byteOrder: order)
            interfaces = []
            sections = []
            clocks = []
        } else {
            format = .pcap(byteOrder: order, resolution: resolution)
            interfaces = [CaptureInterface(linkType: header.linkType, snapLength: header.snapLength,
                                           timestampResolution: resolution)]
            sections = [CaptureSection(byteOrder: order, versionMajor: header.versionMajor,
                                       versionMinor: header.versionMinor, offset: 0, firstInterface: 0, comments: [])]
            clocks = [_InterfaceClock(linkType: header.linkType, unitsPerSecond: resolution.unitsPerSecond,
                                      offsetNanoseconds: 0, snapLength: header.snapLength)]
        }
    }

    // MARK: - Classic pcap

    /// Steps over one classic pcap record: 16-byte header (ts_sec, ts_frac, caplen, len),
    /// then caplen bytes.
    @inlinable @inline(__always)
    mutating func advancePcap(_ file: RawSpan) throws(CaptureFileError) -> Bool {
        let offset = self.offset
        let be = bigEndian
        let remaining = file.byteCount &- offset
        guard remaining >= 16 else { return try pcapEndOfRecords(file) }
        let captured = Int(file.uint32(at: offset &+ 8, bigEndian: be))
        guard captured <= remaining &- 16 else { return try pcapEndOfRecords(file) }
        let seconds = file.uint32(at: offset, bigEndian: be)
        let fraction = file.uint32(at: offset &+ 4, bigEndian: be)
        current.dataOffset = offset &+ 16
        current.capturedLength = captured
        current.originalLength = Int(file.uint32(at: offset &+ 12, bigEndian: be))
        current.timestamp = Timestamp(
            nanoseconds: UInt64(seconds) &* 1_000_000_000 &+ UInt64(fraction) &* pcapNanosecondsPerUnit)
        current.linkType = pcapLinkType
        current.blockOffset = offset
        let next = offset &+ 16 &+ captured
        self.offset = next
        prefetch(file, from: next)
        hasCurrent = true
        packetCount &+= 1
        return true
    }

    /// Prefetches the file up to ``prefetchDistance`` bytes past `offset`, line by line, so the
    /// next records' cache misses overlap with the caller's work on the current one instead of
    /// stalling every advance. (Measured on a 1.3 GB capture: the whole run 30 % faster.)
    @inlinable @inline(__always)
    mutating func prefetch(_ file: RawSpan, from offset: Int) {
        let ahead = min(offset &+ Self.prefetchDistance, file.byteCount)
        guard prefetchedUpTo < ahead else { return }
        unsafe file.withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress else { return }
            var line = max(prefetchedUpTo, offset)
            while line < ahead {
                unsafe prefetchForReading(base + line)
                line &+= 64
            }
            prefetchedUpTo = line
        }
    }

    /// The clean end, or the error for an incomplete record (remembered and rethrown).
    @usableFromInline @inline(never)
    mutating func pcapEndOfRecords(_ file: RawSpan) throws(CaptureFileError) -> Bool {
        hasCurrent = false
        if let error { throw error }
        let remaining = file.byteCount - offset
        if remaining == 0 { return false }
        let failure: CaptureFileError
        if remaining < 16 {
            failure = _error(.truncated, at: offset, "truncated packet record header (16 bytes needed, \(remaining) remain)")
        } else {
            let captured = file.uint32(at: offset + 8, bigEndian: bigEndian)
            failure = _error(.truncated, at: offset,
                             "truncated packet record (header says \(captured) bytes, \(remaining - 16) remain)")
        }
        error = failure
        throw failure
    }

    @usableFromInline struct _FileHeader {
        var isPcapNG = false
        var bigEndian = false
        var nanosecondsPerUnit: UInt64 = 1000
        var linkType = LinkType.null
        var snapLength: UInt32 = 0
        var versionMajor: UInt16 = 0
        var versionMinor: UInt16 = 0
        var dataOffset = 0
    }

    /// Recognises the file by its first four bytes; parses a classic pcap header.
    static func _fileHeader(_ file: RawSpan, name: String) throws(CaptureFileError) -> _FileHeader {
        func fail(_ code: CaptureFileError.Code, _ message: String) -> CaptureFileError {
            CaptureFileError(code, fileName: name, offset: 0, message: message)
        }
        guard file.byteCount >= 4 else {
            throw fail(.notACaptureFile, file.byteCount == 0 ? "empty file" : "file too short (\(file.byteCount) bytes) for a capture file")
        }
        var header = _FileHeader()
        let magic = file.uint32(at: 0, bigEndian: false)
        switch magic {
        case 0x0A0D_0D0A:
            header.isPcapNG = true
            if file.byteCount >= 12 {
                header.bigEndian = file.uint32(at: 8, bigEndian: false) == 0x4D3C_2B1A
            }
            return header
        case 0xA1B2_C3D4: (header.bigEndian, header.nanosecondsPerUnit) = (false, 1000)
        case 0xD4C3_B2A1: (header.bigEndian, header.nanosecondsPerUnit) = (true, 1000)
        case 0xA1B2_3C4D: (header.bigEndian, header.nanosecondsPerUnit) = (false, 1)
        case 0x4D3C_B2A1: (header.bigEndian, header.nanosecondsPerUnit) = (true, 1)
        case 0xA1B2_CD34, 0x34CD_B2A1:
            throw fail(.unsupportedVersion, "modified (Kuznetzov) pcap format is not supported")
        default:
            let hex = String(magic.byteSwapped, radix: 16)
            throw fail(.notACaptureFile, "not a pcap or pcapng file (magic \(String(repeating: "0", count: 8 - hex.count))\(hex))")
        }
        guard file.byteCount >= 24 else {
            throw fail(.truncated, "truncated pcap file header (24 bytes needed, \(file.byteCount) remain)")
        }
        let be = header.bigEndian
        header.versionMajor = file.uint16(at: 4, bigEndian: be)
        header.versionMinor = file.uint16(at: 6, bigEndian: be)
        guard header.versionMajor == 2 else {
            throw fail(.unsupportedVersion, "pcap version \(header.versionMajor).\(header.versionMinor) is not supported")
        }
        header.snapLength = file.uint32(at: 16, bigEndian: be)
        let linkField = file.uint32(at: 20, bigEndian: be)
        // libpcap: bits 16-25 reserved (must be 0), bit 26 FCS-present, bits 28-31 FCS length.
        guard linkField & 0x03FF_0000 == 0 else {
            throw fail(.corrupt, "network type reserved field not zero (0x\(String(linkField, radix: 16)))")
        }
        header.linkType = LinkType(pcapHeaderField: linkField)
        header.dataOffset = 24
        return header
    }

    // MARK: - Helpers

    func _error(_ code: CaptureFileError.Code, at offset: Int, _ message: String) -> CaptureFileError {
        CaptureFileError(code, fileName: fileName, offset: streamBase + offset, message: message)
    }

    /// The option's value as UTF-8 text, without trailing NULs (some writers add one).
    func _string(_ file: RawSpan, _ option: _Option) -> String {
        var length = option.length
        while length > 0, file.uint8(at: option.valueOffset + length - 1) == 0 { length -= 1 }
        return unsafe file.extracting(option.valueOffset ..< option.valueOffset + length).withUnsafeBytes {
            unsafe String(decoding: $0, as: UTF8.self)
        }
    }

    /// `opt_comment` values of the current packet.
    func packetComments(_ file: RawSpan) -> [String] {
        guard hasCurrent, isPcapNG, current.optionsEnd > current.optionsStart else { return [] }
        // The options were validated when the packet was read.
        let options = (try? _options(file, from: current.optionsStart, to: current.optionsEnd,
                                     blockOffset: current.blockOffset, block: "packet")) ?? []
        return options.filter { $0.code == 1 }.map { _string(file, $0) }
    }
}

/// State of the packet the reader currently lends (plain values; no references).
@usableFromInline struct _CurrentPacket {
    @usableFromInline var dataOffset = 0
    @usableFromInline var capturedLength = 0
    @usableFromInline var originalLength = 0
    @usableFromInline var timestamp = Timestamp.zero
    @usableFromInline var linkType = LinkType.null
    @usableFromInline var interface = 0
    @usableFromInline var flags: UInt32 = 0
    @usableFromInline var blockOffset = 0
    @usableFromInline var optionsStart = 0
    @usableFromInline var optionsEnd = 0
    @usableFromInline init() {}
}

/// What the per-packet path needs about an interface, without the strings.
struct _InterfaceClock {
    var linkType: LinkType
    var unitsPerSecond: UInt64
    var offsetNanoseconds: Int64
    var snapLength: UInt32
}

/// One pcapng option: code, and where its value lies in the file.
struct _Option {
    var code: UInt16
    var valueOffset: Int
    var length: Int
}
