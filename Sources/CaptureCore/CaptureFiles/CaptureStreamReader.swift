internal import Glibc

/// Reads classic pcap and pcapng from a stream (a pipe, standard input, a socket) in a
/// bounded window, lending each packet without copying it out of the window.
///
/// ```swift
/// // tcpdump -i eth0 -w - | my-tool
/// var reader = try CaptureStreamReader(fileDescriptor: 0, name: "standard input")
/// while try reader.advance() {
///     let packet = reader.packet          // borrowed; valid until the next advance()
///     decode(packet.bytes, packet.linkType)
/// }
/// ```
///
/// The formats, checks and errors are those of ``CaptureFileReader``, with offsets counted
/// from the start of the stream: a stream and a file with the same bytes give the same
/// packets and the same error. The window holds at least one whole record or block; the
/// records already read make way for new ones, so memory stays at about
/// ``windowBytes`` however long the stream runs. A record or block longer than
/// ``maximumRecordBytes`` is an error (``CaptureFileError/Code/corrupt``) unless the stream
/// ends first, in which case it is reported as truncated, as a file would be.
public struct CaptureStreamReader: ~Copyable {
    /// The window's usual size: reads fill it, records already read make way.
    public static var windowBytes: Int { 1 << 20 }
    /// The longest record or block the window grows to hold.
    public static var maximumRecordBytes: Int { 64 << 20 }

    var _window: _StreamWindow
    var _state: _ReaderState
    /// The first error (sticky): thrown again by every later ``advance()``.
    var _failure: CaptureFileError?
    /// Sections whose offsets have been made stream offsets.
    var _sectionsPlaced = 0

    /// Reads from `fileDescriptor` (left open unless `closeWhenDone`), which may block or not.
    /// `name` is used in errors; `windowBytes` (at least 64) sets the window's usual size.
    /// - Throws: ``CaptureFileError`` when the stream is not a capture, or its file header
    ///   (pcapng: first section header) is unsupported, truncated or corrupt, or reading fails.
    public init(fileDescriptor: Int32, name: String, closeWhenDone: Bool = false,
                windowBytes: Int = CaptureStreamReader.windowBytes) throws(CaptureFileError) {
        try unsafe self.init(name: name, closing: closeWhenDone ? fileDescriptor : -1, windowBytes: windowBytes) { buffer in
            while true {
                let n = unsafe Glibc.read(fileDescriptor, buffer.baseAddress, buffer.count)
                if n >= 0 { return n }
                let error = Glibc.errno
                if error == EINTR { continue }
                if error == EAGAIN {  // a non-blocking descriptor: wait instead of spinning
                    var waiter = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
                    _ = unsafe poll(&waiter, 1, -1)
                    continue
                }
                return -Int(error)
            }
        }
    }

    /// Reads from `read`, which fills the start of the buffer it is given and returns the
    /// number of bytes it put there, 0 at the end of the stream, or a negated `errno`
    /// (tests and fuzzers: any split of the bytes must read the same).
    public init(name: String, windowBytes: Int = CaptureStreamReader.windowBytes,
                read: @escaping (UnsafeMutableRawBufferPointer) -> Int) throws(CaptureFileError) {
        try unsafe self.init(name: name, closing: -1, windowBytes: windowBytes, read: read)
    }

    init(name: String, closing: Int32, windowBytes: Int,
         read: @escaping (UnsafeMutableRawBufferPointer) -> Int) throws(CaptureFileError) {
        var window = unsafe _StreamWindow(name: name, closing: closing, capacity: max(64, windowBytes), read: read)
        var offset = 0, prefetched = 0
        try window.fill(&offset, need: 24, prefetched: &prefetched)
        var state = try _ReaderState(window.bytes, name: name)
        var failure: CaptureFileError? = nil
        var placed = 0
        if state.isPcapNG {
            // The blocks before the first packet, as CaptureFileReader.init reads them.
            do {
                while true {
                    try window.holdBlock(&state)
                    let step = try state.readBlock(window.bytes, untilPacket: true)
                    Self._place(&state, &placed, base: window.base)
                    if step != .other { break }
                }
            } catch {
                let located = window.located(error)
                // A bad first section header rejects the stream; later faults surface from advance().
                guard !state.sections.isEmpty else { throw located }
                failure = located
            }
        }
        _window = window
        _state = state
        _failure = failure
        _sectionsPlaced = placed
    }

    /// The name given when opening, as used in error messages.
    public var fileName: String { _state.fileName }
    /// The container format; for pcapng, the first section's byte order.
    public var format: CaptureFileFormat { _state.format }
    /// Every interface seen so far. Index with ``PacketRecord/interfaceIndex``.
    public var interfaces: [CaptureInterface] { _state.interfaces }
    /// Every section seen so far (one for classic pcap), with stream offsets.
    public var sections: [CaptureSection] { _state.sections }
    /// Packets delivered so far.
    public var packetCount: Int { _state.packetCount }
    /// Bytes of the stream consumed so far: the offset of the next record or block.
    public var bytesRead: Int { _window.base + _state.offset }
    /// The window's size now: the size it was opened with, or the longest record read.
    public var windowCapacity: Int { _window.capacity }

    /// Moves to the next packet, reading from the stream as needed (this may block).
    /// - Returns: `true` when ``packet`` now holds a packet, `false` at the clean end.
    /// - Throws: ``CaptureFileError`` at the first truncated or corrupt record or block, or
    ///   read failure, after every packet before it was delivered; later calls throw it again.
    public mutating func advance() throws(CaptureFileError) -> Bool {
        _state.hasCurrent = false
        if let _failure { throw _failure }
        do {
            if _state.isPcapNG {
                while true {
                    try _window.holdBlock(&_state)
                    let step = try _state.readBlock(_window.bytes, untilPacket: false)
                    Self._place(&_state, &_sectionsPlaced, base: _window.base)
                    if step == .packet { return true }
                    if step == .end { return false }
                }
            }
            try _window.holdPcapRecord(&_state)
            return try _state.advancePcap(_window.bytes)
        } catch {
            _state.hasCurrent = false
            let located = _window.located(error)
            _failure = located
            throw located
        }
    }

    /// The current packet, borrowed from the window.
    ///
    /// - Precondition: the last ``advance()`` returned `true`.
    public var packet: PacketRecord {
        @_lifetime(borrow self) borrowing get {
            precondition(_state.hasCurrent, "CaptureStreamReader.packet read without a current packet")
            let c = _state.current
            let bytes = _window.bytes.extracting(c.dataOffset ..< c.dataOffset &+ c.capturedLength)
            return PacketRecord(bytes: bytes, originalLength: c.originalLength, timestamp: c.timestamp,
                                linkType: c.linkType, interfaceIndex: c.interface,
                                direction: PacketDirection(pcapngFlags: c.flags), flags: c.flags,
                                fileOffset: _window.base &+ c.blockOffset)
        }
    }

    /// `opt_comment` values of the current packet (pcapng EPB/OPB), in stream order.
    public var packetComments: [String] {
        _state.packetComments(_window.bytes)
    }

    /// Turns the offsets of sections read since the last call into stream offsets.
    static func _place(_ state: inout _ReaderState, _ placed: inout Int, base: Int) {
        while placed < state.sections.count {
            state.sections[placed].offset += base
            placed += 1
        }
    }
}

/// The bytes of a stream from `base` on, in a buffer that records already read leave.
@safe struct _StreamWindow: ~Copyable {
    let name: String
    let closing: Int32
    let read: (UnsafeMutableRawBufferPointer) -> Int
    var buffer: UnsafeMutableRawPointer
    var capacity: Int
    /// Bytes held, from the start of `buffer`.
    var count = 0
    /// Stream offset of the first byte held.
    var base = 0
    var atEnd = false

    init(name: String, closing: Int32, capacity: Int, read: @escaping (UnsafeMutableRawBufferPointer) -> Int) {
        self.name = name
        self.closing = closing
        unsafe self.read = unsafe read
        self.capacity = capacity
        unsafe buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        unsafe buffer.deallocate()
        if closing >= 0 { _ = Glibc.close(closing) }
    }

    /// The bytes held, valid until the next fill.
    var bytes: RawSpan {
        @_lifetime(borrow self) borrowing get {
            let span = unsafe RawSpan(_unsafeBytes: UnsafeRawBufferPointer(start: buffer, count: count))
            return unsafe _overrideLifetime(span, borrowing: self)
        }
    }

    /// Reads until `need` bytes are held from `offset` on, or the stream ends. Bytes before
    /// `offset` are dropped when room is needed: `offset` and `prefetched` (buffer offsets)
    /// move with them. The buffer grows (doubling, at most to `need`) only as bytes arrive, so
    /// a record that claims more than the stream holds costs no more than the stream.
    mutating func fill(_ offset: inout Int, need: Int, prefetched: inout Int) throws(CaptureFileError) {
        guard count - offset < need, !atEnd else { return }
        if offset + need > capacity && offset > 0 {
            let kept = count - offset
            unsafe buffer.copyMemory(from: buffer + offset, byteCount: kept)
            base += offset
            count = kept
            prefetched = max(0, prefetched - offset)
            offset = 0
        }
        while count - offset < need {
            if count == capacity {
                let grown = min(capacity * 2, offset + need)
                let memory = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 16)
                unsafe memory.copyMemory(from: buffer, byteCount: count)
                unsafe buffer.deallocate()
                unsafe buffer = memory
                capacity = grown
            }
            let n = unsafe read(UnsafeMutableRawBufferPointer(start: buffer + count, count: capacity - count))
            if n == 0 {
                atEnd = true
                return
            }
            guard n > 0 else {
                throw CaptureFileError(.cannotRead(errno: Int32(-n)), fileName: name, offset: base + count,
                                       message: "read failed")
            }
            count += n
        }
    }

    /// Makes sure the pcap record at the state's offset is held whole, or the stream ended.
    mutating func holdPcapRecord(_ state: inout _ReaderState) throws(CaptureFileError) {
        try fill(&state.offset, need: 16, prefetched: &state.prefetchedUpTo)
        guard count - state.offset >= 16 else { return }
        let captured = Int(bytes.uint32(at: state.offset + 8, bigEndian: state.bigEndian))
        try hold(&state, length: 16 + captured, what: "packet record")
    }

    /// Makes sure the pcapng block at the state's offset is held whole, or the stream ended.
    mutating func holdBlock(_ state: inout _ReaderState) throws(CaptureFileError) {
        try fill(&state.offset, need: 12, prefetched: &state.prefetchedUpTo)
        guard count - state.offset >= 12 else { return }
        let at = state.offset
        var bigEndian = state.bigEndian
        if bytes.uint32(at: at, bigEndian: bigEndian) == _BlockType.sectionHeader {
            switch bytes.uint32(at: at + 8, bigEndian: false) {
            case 0x1A2B_3C4D: bigEndian = false
            case 0x4D3C_2B1A: bigEndian = true
            default: return  // the reader reports the missing byte-order magic
            }
        }
        try hold(&state, length: Int(bytes.uint32(at: at + 4, bigEndian: bigEndian)), what: "block")
    }

    /// Reads until `length` bytes are held from the state's offset, up to the largest record
    /// the window takes; beyond that, an error unless the stream ended before.
    mutating func hold(_ state: inout _ReaderState, length: Int, what: String) throws(CaptureFileError) {
        let limit = CaptureStreamReader.maximumRecordBytes
        try fill(&state.offset, need: min(length, limit + 1), prefetched: &state.prefetchedUpTo)
        if length > limit && count - state.offset > limit {
            throw CaptureFileError(.corrupt, fileName: name, offset: state.offset,  // located() adds base
                                   message: "\(what) of \(length) bytes is longer than the \(limit >> 20) MiB a stream reader holds")
        }
    }

    /// `error` with its offset counted from the start of the stream (parse errors count from
    /// the window's start; read failures already count from the stream's).
    func located(_ error: CaptureFileError) -> CaptureFileError {
        guard case .cannotRead = error.code else {
            var error = error
            error.offset = error.offset.map { $0 + base }
            return error
        }
        return error
    }
}
