/// Writes a pcapng file: one little-endian section, any number of interfaces (IDBs), packets
/// as Enhanced Packet Blocks (EPB) and Interface Statistics Blocks (ISB).
///
/// Output is buffered (128 KiB) and written when the buffer fills, on ``flush()`` and on
/// ``close()``; `deinit` flushes too but cannot report errors, so call `close()`.
/// Writing a packet allocates nothing.
public struct PcapNGWriter: ~Copyable {
    var _output: _FileOutput
    var _interfaces: [_WriterInterface] = []
    /// Packets written so far.
    public private(set) var packetCount = 0

    struct _WriterInterface {
        var snapLength: UInt32
        var resolution: TimestampResolution
    }

    /// Creates (or truncates) the file at `path` and writes the Section Header Block, with
    /// `shb_userappl` = `userApplication` and the optional comment.
    /// - Throws: ``CaptureFileError`` with ``CaptureFileError/Code/cannotOpen(errno:)``.
    public init(path: String, comment: String? = nil, hardware: String? = nil, operatingSystem: String? = nil,
                userApplication: String = "PodTap") throws(CaptureFileError) {
        try self.init(output: _FileOutput(path: path), comment: comment, hardware: hardware,
                      operatingSystem: operatingSystem, userApplication: userApplication)
    }

    /// Writes to an open descriptor, e.g. 1 to stream into `wireshark -k -i -`.
    /// - Parameters:
    ///   - name: used in error messages.
    ///   - closeWhenDone: whether ``close()`` closes the descriptor.
    public init(fileDescriptor: Int32, name: String? = nil, closeWhenDone: Bool = false, comment: String? = nil,
                hardware: String? = nil, operatingSystem: String? = nil,
                userApplication: String = "PodTap") throws(CaptureFileError) {
        let output = _FileOutput(fileDescriptor: fileDescriptor, name: name ?? "file descriptor \(fileDescriptor)",
                                 closesDescriptor: closeWhenDone)
        try self.init(output: output, comment: comment, hardware: hardware, operatingSystem: operatingSystem,
                      userApplication: userApplication)
    }

    init(output: consuming _FileOutput, comment: String?, hardware: String?, operatingSystem: String?,
         userApplication: String) throws(CaptureFileError) {
        // SHB: type | length | byte-order magic | major 1 | minor 0 | section length -1 | options | length
        let options: [(UInt16, String)] = [(1, comment), (2, hardware), (3, operatingSystem), (4, userApplication)]
            .compactMap { code, value in value.map { (code, $0) } }
        let length = try 28 + Self._optionsLength(options, name: output.name)
        try output.appendUInt32(0x0A0D_0D0A)
        try output.appendUInt32(UInt32(length))
        try output.appendUInt32(0x1A2B_3C4D)
        try output.appendUInt16(1)
        try output.appendUInt16(0)
        try output.appendUInt64(.max)
        try Self._appendOptions(options, to: &output)
        try output.appendUInt32(UInt32(length))
        self._output = output
    }

    /// Writes an Interface Description Block for `interface` (link type, snap length,
    /// `if_name`, `if_description`, `opt_comment`s, `if_os`, `if_hardware`, `if_fcslen`,
    /// `if_tsresol`). Its `if_tsoffset`, section and statistics are not written: timestamps
    /// are written absolute.
    /// - Returns: the interface index to pass to ``write(interface:bytes:originalLength:timestamp:comment:direction:)``.
    /// - Precondition: the link type fits in 16 bits.
    @discardableResult
    public mutating func addInterface(_ interface: CaptureInterface) throws(CaptureFileError) -> Int {
        precondition(interface.linkType.rawValue <= 0xFFFF, "pcapng link types have 16 bits")
        var options: [(UInt16, String)] = interface.comments.map { (1, $0) }
        if let name = interface.name { options.append((2, name)) }
        if let description = interface.description { options.append((3, description)) }
        if let os = interface.operatingSystem { options.append((12, os)) }
        if let hardware = interface.hardware { options.append((15, hardware)) }
        var length = try 20 + Self._optionsLength(options, name: _output.name) + 8  // + if_tsresol
        if options.isEmpty { length += 4 }  // opt_endofopt, counted by _optionsLength otherwise
        if interface.fcsLength != nil { length += 8 }
        try _output.appendUInt32(1)
        try _output.appendUInt32(UInt32(length))
        try _output.appendUInt16(UInt16(interface.linkType.rawValue))
        try _output.appendUInt16(0)
        try _output.appendUInt32(interface.snapLength)
        try _output.appendUInt16(9)  // if_tsresol
        try _output.appendUInt16(1)
        try _output.appendUInt32(UInt32(interface.timestampResolution.pcapngOptionValue))
        if let fcs = interface.fcsLength {
            try _output.appendUInt16(13)  // if_fcslen
            try _output.appendUInt16(1)
            try _output.appendUInt32(UInt32(fcs))
        }
        try Self._appendOptions(options, to: &_output, forceEnd: true)
        try _output.appendUInt32(UInt32(length))
        _interfaces.append(_WriterInterface(snapLength: interface.snapLength, resolution: interface.timestampResolution))
        return _interfaces.count - 1
    }

    /// Adds an interface with nanosecond timestamps; see ``addInterface(_:)``.
    @discardableResult
    public mutating func addInterface(linkType: LinkType, name: String? = nil, description: String? = nil,
                                      snapLength: UInt32 = 0,
                                      timestampResolution: TimestampResolution = .nanoseconds) throws(CaptureFileError) -> Int {
        try addInterface(CaptureInterface(linkType: linkType, snapLength: snapLength, name: name,
                                          description: description, timestampResolution: timestampResolution))
    }

    /// Appends an Enhanced Packet Block.
    /// - Parameters:
    ///   - interface: an index returned by ``addInterface(_:)``.
    ///   - bytes: the captured bytes; those beyond the interface's snap length (if not 0) are not written.
    ///   - originalLength: length on the wire (default `bytes.byteCount`); never written smaller
    ///     than the captured length.
    ///   - timestamp: written in the interface's resolution (rounded down).
    ///   - comment: an `opt_comment`, if any.
    ///   - direction: written as `epb_flags` unless ``PacketDirection/unknown``.
    /// - Precondition: `interface` was returned by ``addInterface(_:)``.
    public mutating func write(interface: Int, bytes: RawSpan, originalLength: Int? = nil, timestamp: Timestamp,
                               comment: String? = nil, direction: PacketDirection = .unknown) throws(CaptureFileError) {
        precondition(interface >= 0 && interface < _interfaces.count, "unknown interface \(interface)")
        let description = _interfaces[interface]
        var captured = bytes.byteCount
        if description.snapLength != 0 { captured = min(captured, Int(description.snapLength)) }
        precondition(captured <= 0x7FFF_0000, "packet too large for a pcapng block")
        let original = max(originalLength ?? bytes.byteCount, captured)
        let units = description.resolution.units(fromNanoseconds: timestamp.nanoseconds)
        var optionsLength = 0
        if let comment {
            let count = comment.utf8.count
            guard count <= 0xFFFF else { throw _tooLong(code: 1) }
            optionsLength += 4 + count + _padding4(count)
        }
        if direction != .unknown { optionsLength += 8 }
        if optionsLength > 0 { optionsLength += 4 }
        let padding = _padding4(captured)
        let length = 32 + captured + padding + optionsLength
        try _output.reserve(28)
        try _output.appendUInt32(6)
        try _output.appendUInt32(UInt32(length))
        try _output.appendUInt32(UInt32(interface))
        try _output.appendUInt32(UInt32(truncatingIfNeeded: units >> 32))
        try _output.appendUInt32(UInt32(truncatingIfNeeded: units))
        try _output.appendUInt32(UInt32(captured))
        try _output.appendUInt32(UInt32(clamping: original))
        try _output.append(bytes.extracting(first: captured))
        try _output.appendZeros(padding)
        if let comment {
            let count = comment.utf8.count
            try _output.appendUInt16(1)
            try _output.appendUInt16(UInt16(count))
            try _output.append(utf8: comment)
            try _output.appendZeros(_padding4(count))
        }
        if direction != .unknown {
            try _output.appendUInt16(2)  // epb_flags: bits 0-1 direction
            try _output.appendUInt16(4)
            try _output.appendUInt32(UInt32(direction.rawValue))
        }
        if optionsLength > 0 { try _output.appendUInt32(0) }
        try _output.appendUInt32(UInt32(length))
        packetCount += 1
    }

    /// Appends a packet read from another file, on `interface` (by default the packet's own
    /// interface index), keeping its original length, timestamp and direction.
    public mutating func write(_ packet: borrowing PacketRecord, interface: Int? = nil,
                               comment: String? = nil) throws(CaptureFileError) {
        try write(interface: interface ?? packet.interfaceIndex, bytes: packet.bytes,
                  originalLength: packet.originalLength, timestamp: packet.timestamp, comment: comment,
                  direction: packet.direction)
    }

    /// Appends an Interface Statistics Block with the given counters (`isb_ifrecv`,
    /// `isb_ifdrop`, `isb_osdrop`, `isb_filteraccept`, `isb_usrdeliv`); `nil` ones are omitted.
    public mutating func writeInterfaceStatistics(interface: Int, timestamp: Timestamp = .zero, received: UInt64? = nil,
                                                  dropped: UInt64? = nil, osDropped: UInt64? = nil,
                                                  filterAccepted: UInt64? = nil,
                                                  deliveredToUser: UInt64? = nil) throws(CaptureFileError) {
        try writeInterfaceStatistics(interface: interface, InterfaceStatistics(
            timestamp: timestamp, received: received, interfaceDropped: dropped, filterAccepted: filterAccepted,
            osDropped: osDropped, deliveredToUser: deliveredToUser))
    }

    /// Appends an Interface Statistics Block.
    public mutating func writeInterfaceStatistics(interface: Int, _ statistics: InterfaceStatistics) throws(CaptureFileError) {
        precondition(interface >= 0 && interface < _interfaces.count, "unknown interface \(interface)")
        let counters: [(UInt16, UInt64?)] = [(4, statistics.received), (5, statistics.interfaceDropped),
                                             (6, statistics.filterAccepted), (7, statistics.osDropped),
                                             (8, statistics.deliveredToUser)]
        let present = counters.compactMap { code, value in value.map { (code, $0) } }
        let length = 24 + (present.isEmpty ? 0 : present.count * 12 + 4)
        let units = _interfaces[interface].resolution.units(fromNanoseconds: statistics.timestamp.nanoseconds)
        try _output.appendUInt32(5)
        try _output.appendUInt32(UInt32(length))
        try _output.appendUInt32(UInt32(interface))
        try _output.appendUInt32(UInt32(truncatingIfNeeded: units >> 32))
        try _output.appendUInt32(UInt32(truncatingIfNeeded: units))
        for (code, value) in present {
            try _output.appendUInt16(code)
            try _output.appendUInt16(8)
            try _output.appendUInt64(value)
        }
        if !present.isEmpty { try _output.appendUInt32(0) }
        try _output.appendUInt32(UInt32(length))
    }

    /// Writes out buffered blocks (e.g. so a live reader sees them).
    public mutating func flush() throws(CaptureFileError) {
        try _output.flush()
    }

    /// Flushes and, if owned, closes the file.
    public consuming func close() throws(CaptureFileError) {
        try _output.close()
    }

    // MARK: - Options

    /// Bytes taken by string options plus `opt_endofopt` (0 when there are none).
    static func _optionsLength(_ options: [(UInt16, String)], name: String) throws(CaptureFileError) -> Int {
        guard !options.isEmpty else { return 0 }
        var length = 4
        for (code, value) in options {
            let count = value.utf8.count
            guard count <= 0xFFFF else {
                throw CaptureFileError(.invalidArgument, fileName: name, message: "option \(code) is longer than 65535 bytes")
            }
            length += 4 + count + _padding4(count)
        }
        return length
    }

    static func _appendOptions(_ options: [(UInt16, String)], to output: inout _FileOutput,
                               forceEnd: Bool = false) throws(CaptureFileError) {
        for (code, value) in options {
            let count = value.utf8.count
            try output.appendUInt16(code)
            try output.appendUInt16(UInt16(count))
            try output.append(utf8: value)
            try output.appendZeros(_padding4(count))
        }
        if !options.isEmpty || forceEnd { try output.appendUInt32(0) }
    }

    func _tooLong(code: UInt16) -> CaptureFileError {
        CaptureFileError(.invalidArgument, fileName: _output.name, message: "option \(code) is longer than 65535 bytes")
    }
}
