// pcapng block parsing (draft-ietf-opsawg-pcapng). Every block:
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +---------------------------------------------------------------+
//   |                          Block Type                           |
//   +---------------------------------------------------------------+
//   |                      Block Total Length                       |
//   +---------------------------------------------------------------+
//   /                          Block Body                           /
//   +---------------------------------------------------------------+
//   |                      Block Total Length                       |
//   +---------------------------------------------------------------+
//
// in the byte order of the enclosing Section Header Block.

enum _BlockType {
    static let sectionHeader: UInt32 = 0x0A0D_0D0A
    static let interfaceDescription: UInt32 = 1
    static let obsoletePacket: UInt32 = 2
    static let simplePacket: UInt32 = 3
    static let interfaceStatistics: UInt32 = 5
    static let enhancedPacket: UInt32 = 6
}

extension _ReaderState {
    @usableFromInline @inline(never)
    mutating func advancePcapNG(_ file: RawSpan) throws(CaptureFileError) -> Bool {
        hasCurrent = false
        if let error { throw error }
        do {
            return try readBlocks(file, untilPacket: false)
        } catch {
            self.error = error
            throw error
        }
    }

    /// Processes blocks from `offset`. With `untilPacket`, stops before the first packet
    /// block (for `init`); otherwise consumes it and makes it current.
    /// - Returns: `true` when a packet became current, `false` at the clean end or stop.
    @discardableResult
    mutating func readBlocks(_ file: RawSpan, untilPacket: Bool) throws(CaptureFileError) -> Bool {
        while true {
            switch try readBlock(file, untilPacket: untilPacket) {
            case .packet: return true
            case .packetNext, .end: return false
            case .other: continue
            }
        }
    }

    /// What ``readBlock(_:untilPacket:)`` did.
    enum _BlockStep { case packet, other, packetNext, end }

    /// Processes the one block at `offset` (the stream reader makes sure it is whole first).
    /// - Returns: `.packet` when it was a packet block, now current; `.packetNext` when it is
    ///   one and `untilPacket` left it; `.other` for any other block; `.end` at the clean end.
    @inline(__always)
    mutating func readBlock(_ file: RawSpan, untilPacket: Bool) throws(CaptureFileError) -> _BlockStep {
        guard let (type, length, bigEndian) = try _blockHeader(file, at: offset) else { return .end }
        let start = offset
        switch type {
        case _BlockType.enhancedPacket, _BlockType.simplePacket, _BlockType.obsoletePacket:
            if untilPacket { return .packetNext }
            try _readPacketBlock(file, type: type, at: start, length: length)
            offset = start + length
            prefetch(file, from: offset)
            hasCurrent = true
            packetCount &+= 1
            return .packet
        case _BlockType.sectionHeader:
            try _readSectionHeader(file, at: start, length: length, bigEndian: bigEndian)
        case _BlockType.interfaceDescription:
            try _readInterfaceDescription(file, at: start, length: length)
        case _BlockType.interfaceStatistics:
            try _readInterfaceStatistics(file, at: start, length: length)
        default:
            break  // NRB, DSB, custom, systemd journal, unknown: skipped
        }
        offset = start + length
        return .other
    }

    /// Type, total length and byte order of the block at `start`, validated against the
    /// file; `nil` at the clean end of the file.
    func _blockHeader(_ file: RawSpan, at start: Int) throws(CaptureFileError) -> (type: UInt32, length: Int, bigEndian: Bool)? {
        let remaining = file.byteCount - start
        if remaining == 0 { return nil }
        guard remaining >= 12 else {
            throw _error(.truncated, at: start, "truncated block header (12 bytes needed, \(remaining) remain)")
        }
        var bigEndian = self.bigEndian
        let type = file.uint32(at: start, bigEndian: bigEndian)
        if type == _BlockType.sectionHeader {
            guard let sectionBigEndian = Self._sectionByteOrder(file, at: start) else {
                throw _error(sections.isEmpty ? .notACaptureFile : .corrupt, at: start,
                             "section header block without byte-order magic")
            }
            bigEndian = sectionBigEndian
        }
        let length = Int(file.uint32(at: start + 4, bigEndian: bigEndian))
        guard length >= 12 else {
            throw _error(.corrupt, at: start, "\(Self._blockName(type)) length \(length) is smaller than 12")
        }
        guard length % 4 == 0 else {
            throw _error(.corrupt, at: start, "\(Self._blockName(type)) length \(length) is not a multiple of 4")
        }
        guard length <= remaining else {
            throw _error(.truncated, at: start,
                         "truncated \(Self._blockName(type)) (length \(length), \(remaining) bytes remain)")
        }
        let trailer = Int(file.uint32(at: start + length - 4, bigEndian: bigEndian))
        guard trailer == length else {
            throw _error(.corrupt, at: start,
                         "\(Self._blockName(type)) trailing length \(trailer) does not match leading length \(length)")
        }
        return (type, length, bigEndian)
    }

    /// A section's byte order, from the byte-order magic of the section header block at
    /// `start` (which comes before its length): `true` for big-endian, `nil` without magic.
    /// At least 12 bytes must remain.
    static func _sectionByteOrder(_ file: RawSpan, at start: Int) -> Bool? {
        switch file.uint32(at: start + 8, bigEndian: false) {
        case 0x1A2B_3C4D: false
        case 0x4D3C_2B1A: true
        default: nil
        }
    }

    /// Fills `_current` from an EPB, SPB or obsolete packet block (lengths already validated).
    mutating func _readPacketBlock(_ file: RawSpan, type: UInt32, at start: Int, length: Int) throws(CaptureFileError) {
        current = try _packetBlock(file, type: type, at: start, length: length)
    }

    func _packetBlock(_ file: RawSpan, type: UInt32, at start: Int, length: Int) throws(CaptureFileError) -> _CurrentPacket {
        let be = bigEndian
        var current = _CurrentPacket()
        current.blockOffset = start
        if type == _BlockType.simplePacket {
            //  +8 Original Packet Length | +12 Packet Data ... | trailer
            guard length >= 16 else {
                throw _error(.corrupt, at: start, "simple packet block length \(length) is smaller than 16")
            }
            let clock = try _clock(forSectionInterface: 0, at: start, block: "simple packet block")
            let original = Int(file.uint32(at: start + 8, bigEndian: be))
            // Captured length = min(original length, snap length), and never more than the body holds.
            var captured = min(original, length - 16)
            if clock.snapLength != 0 { captured = min(captured, Int(clock.snapLength)) }
            current.dataOffset = start + 12
            current.capturedLength = captured
            current.originalLength = original
            current.linkType = clock.linkType
            current.interface = sectionFirstInterface
            return current
        }
        //  EPB: +8 Interface ID (32) | +12 ts high | +16 ts low | +20 caplen | +24 len | +28 data, options
        //  OPB: +8 Interface ID (16), Drops Count (16) | otherwise the same
        let name = type == _BlockType.enhancedPacket ? "enhanced packet block" : "packet block"
        guard length >= 32 else {
            throw _error(.corrupt, at: start, "\(name) length \(length) is smaller than 32")
        }
        let interfaceID = type == _BlockType.enhancedPacket
            ? Int(file.uint32(at: start + 8, bigEndian: be)) : Int(file.uint16(at: start + 8, bigEndian: be))
        let clock = try _clock(forSectionInterface: interfaceID, at: start, block: name)
        let units = UInt64(file.uint32(at: start + 12, bigEndian: be)) << 32
            | UInt64(file.uint32(at: start + 16, bigEndian: be))
        let captured = Int(file.uint32(at: start + 20, bigEndian: be))
        let original = Int(file.uint32(at: start + 24, bigEndian: be))
        guard captured <= length - 32 else {
            throw _error(.corrupt, at: start,
                         "\(name) captured length \(captured) exceeds the block body (\(length - 32) bytes)")
        }
        current.dataOffset = start + 28
        current.capturedLength = captured
        current.originalLength = original
        current.linkType = clock.linkType
        current.interface = sectionFirstInterface + interfaceID
        current.timestamp = Self._timestamp(units: units, clock: clock)
        // Options: scanned for flags (code 2) and validated, without allocating.
        let optionsStart = min(start + 28 + ((captured + 3) & ~3), start + length - 4)
        let optionsEnd = start + length - 4
        current.optionsStart = optionsStart
        current.optionsEnd = optionsEnd
        var position = optionsStart
        while optionsEnd - position >= 4 {
            let code = file.uint16(at: position, bigEndian: be)
            let optionLength = Int(file.uint16(at: position + 2, bigEndian: be))
            if code == 0 { break }
            guard optionLength <= optionsEnd - position - 4 else {
                throw _optionOverrun(block: name, at: start, code: code, length: optionLength,
                                     left: optionsEnd - position - 4)
            }
            if code == 2, optionLength >= 4 {
                current.flags = file.uint32(at: position + 4, bigEndian: be)
            }
            position += 4 + ((optionLength + 3) & ~3)
        }
        return current
    }

    @inline(__always)
    static func _timestamp(units: UInt64, clock: _InterfaceClock) -> Timestamp {
        var nanoseconds = TimestampResolution._nanoseconds(units, unitsPerSecond: clock.unitsPerSecond)
        if clock.offsetNanoseconds != 0 {
            let offset = clock.offsetNanoseconds
            if offset > 0 {
                let (sum, overflow) = nanoseconds.addingReportingOverflow(UInt64(offset))
                nanoseconds = overflow ? .max : sum
            } else {
                let magnitude = offset.magnitude
                nanoseconds = nanoseconds > magnitude ? nanoseconds - magnitude : 0
            }
        }
        return Timestamp(nanoseconds: nanoseconds)
    }

    func _clock(forSectionInterface id: Int, at start: Int, block: String) throws(CaptureFileError) -> _InterfaceClock {
        let inSection = clocks.count - sectionFirstInterface
        guard id < inSection else {
            throw _error(.corrupt, at: start,
                         "\(block) references interface \(id) but the section has \(inSection) interface\(inSection == 1 ? "" : "s")")
        }
        return clocks[sectionFirstInterface + id]
    }

    @inline(never)
    func _optionOverrun(block: String, at start: Int, code: UInt16, length: Int, left: Int) -> CaptureFileError {
        _error(.corrupt, at: start, "\(block) option \(code) (length \(length)) overruns the block (\(left) bytes left)")
    }

    /// The options between `start` and `end` (the block's trailing length), up to
    /// `opt_endofopt`; fewer than 4 bytes left over are ignored as padding.
    func _options(_ file: RawSpan, from start: Int, to end: Int, blockOffset: Int, block: String) throws(CaptureFileError) -> [_Option] {
        var options: [_Option] = []
        var position = start
        while end - position >= 4 {
            let code = file.uint16(at: position, bigEndian: bigEndian)
            let length = Int(file.uint16(at: position + 2, bigEndian: bigEndian))
            if code == 0 { break }
            guard length <= end - position - 4 else {
                throw _optionOverrun(block: block, at: blockOffset, code: code, length: length, left: end - position - 4)
            }
            options.append(_Option(code: code, valueOffset: position + 4, length: length))
            position += 4 + ((length + 3) & ~3)
        }
        return options
    }

    func _uint64(_ file: RawSpan, _ option: _Option) -> UInt64? {
        option.length >= 8 ? file.uint64(at: option.valueOffset, bigEndian: bigEndian) : nil
    }

    //  +8 Byte-Order Magic | +12 Major, Minor | +16 Section Length (64) | +24 options
    mutating func _readSectionHeader(_ file: RawSpan, at start: Int, length: Int, bigEndian: Bool) throws(CaptureFileError) {
        guard length >= 28 else {
            throw _error(.corrupt, at: start, "section header block length \(length) is smaller than 28")
        }
        let major = file.uint16(at: start + 12, bigEndian: bigEndian)
        let minor = file.uint16(at: start + 14, bigEndian: bigEndian)
        // 1.0 is current; 1.2 was written by some tools and is read by libpcap and Wireshark.
        guard major == 1, minor == 0 || minor == 2 else {
            throw _error(.unsupportedVersion, at: start, "unsupported pcapng version \(major).\(minor)")
        }
        self.bigEndian = bigEndian
        let order: CaptureByteOrder = bigEndian ? .bigEndian : .littleEndian
        var section = CaptureSection(byteOrder: order, versionMajor: major, versionMinor: minor, offset: streamBase + start,
                                     firstInterface: interfaces.count, comments: [])
        for option in try _options(file, from: start + 24, to: start + length - 4, blockOffset: start, block: "section header block") {
            switch option.code {
            case 1: section.comments.append(_string(file, option))
            case 2: section.hardware = _string(file, option)
            case 3: section.operatingSystem = _string(file, option)
            case 4: section.userApplication = _string(file, option)
            default: break
            }
        }
        if sections.isEmpty { format = .pcapng(byteOrder: order) }
        sections.append(section)
        sectionFirstInterface = interfaces.count
    }

    //  +8 LinkType (16), Reserved (16) | +12 SnapLen | +16 options
    mutating func _readInterfaceDescription(_ file: RawSpan, at start: Int, length: Int) throws(CaptureFileError) {
        guard length >= 20 else {
            throw _error(.corrupt, at: start, "interface description block length \(length) is smaller than 20")
        }
        let linkType = LinkType(rawValue: UInt32(file.uint16(at: start + 8, bigEndian: bigEndian)))
        let snapLength = file.uint32(at: start + 12, bigEndian: bigEndian)
        var interface = CaptureInterface(linkType: linkType, snapLength: snapLength,
                                         timestampResolution: .microseconds, section: sections.count - 1)
        for option in try _options(file, from: start + 16, to: start + length - 4, blockOffset: start, block: "interface description block") {
            switch option.code {
            case 1: interface.comments.append(_string(file, option))
            case 2: interface.name = _string(file, option)
            case 3: interface.description = _string(file, option)
            case 9 where option.length >= 1:
                let value = file.uint8(at: option.valueOffset)
                guard let resolution = TimestampResolution(pcapngOptionValue: value) else {
                    throw _error(.corrupt, at: start, "if_tsresol 0x\(String(value, radix: 16)) is out of range")
                }
                interface.timestampResolution = resolution
            case 12: interface.operatingSystem = _string(file, option)
            case 13 where option.length >= 1: interface.fcsLength = file.uint8(at: option.valueOffset)
            case 14: if let raw = _uint64(file, option) { interface.timestampOffsetSeconds = Int64(bitPattern: raw) }
            case 15: interface.hardware = _string(file, option)
            default: break
            }
        }
        let (offset, overflow) = interface.timestampOffsetSeconds.multipliedReportingOverflow(by: 1_000_000_000)
        let offsetNanoseconds = overflow ? (interface.timestampOffsetSeconds < 0 ? Int64.min : Int64.max) : offset
        clocks.append(_InterfaceClock(linkType: linkType, unitsPerSecond: interface.timestampResolution.unitsPerSecond,
                                       offsetNanoseconds: offsetNanoseconds, snapLength: snapLength))
        interfaces.append(interface)
    }

    //  +8 Interface ID | +12 ts high | +16 ts low | +20 options
    mutating func _readInterfaceStatistics(_ file: RawSpan, at start: Int, length: Int) throws(CaptureFileError) {
        guard length >= 24 else {
            throw _error(.corrupt, at: start, "interface statistics block length \(length) is smaller than 24")
        }
        let id = Int(file.uint32(at: start + 8, bigEndian: bigEndian))
        let options = try _options(file, from: start + 20, to: start + length - 4, blockOffset: start, block: "interface statistics block")
        // Statistics for an interface this section never declared are ignored, as Wireshark does.
        guard id < clocks.count - sectionFirstInterface else { return }
        let index = sectionFirstInterface + id
        let units = UInt64(file.uint32(at: start + 12, bigEndian: bigEndian)) << 32
            | UInt64(file.uint32(at: start + 16, bigEndian: bigEndian))
        var statistics = InterfaceStatistics(timestamp: Self._timestamp(units: units, clock: clocks[index]))
        for option in options {
            switch option.code {
            case 4: statistics.received = _uint64(file, option)
            case 5: statistics.interfaceDropped = _uint64(file, option)
            case 6: statistics.filterAccepted = _uint64(file, option)
            case 7: statistics.osDropped = _uint64(file, option)
            case 8: statistics.deliveredToUser = _uint64(file, option)
            default: break
            }
        }
        interfaces[index].statistics = statistics
    }

    static func _blockName(_ type: UInt32) -> String {
        switch type {
        case _BlockType.sectionHeader: return "section header block"
        case _BlockType.interfaceDescription: return "interface description block"
        case _BlockType.obsoletePacket: return "packet block"
        case _BlockType.simplePacket: return "simple packet block"
        case 4: return "name resolution block"
        case _BlockType.interfaceStatistics: return "interface statistics block"
        case _BlockType.enhancedPacket: return "enhanced packet block"
        case 0x0A: return "decryption secrets block"
        default:
            let hex = String(type, radix: 16)
            return "block (type 0x\(String(repeating: "0", count: max(0, 8 - hex.count)))\(hex))"
        }
    }
}
