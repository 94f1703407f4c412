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
    /// Parses the window; its `streamBase` follows the window's start, and its `error`
    /// (the first one, sticky) is thrown again by every later ``advance()``.
    var _state: _ReaderState

    /// Reads from `fileDescriptor` (left open unless `closeWhenDone`), which may block or not.
    /// `name` is used in errors; `windowBytes` (at least 64) sets the window's usual size.
    /// - Throws: ``CaptureFileError`` when the stream is not a capture, or its file header
    ///   (pcapng: first section header) is unsupported, truncated or corrupt, or reading fails.
    public init(fileDescriptor: Int32, name: String, closeWhenDone: Bool = false,
                windowBytes: Int = CaptureStreamReader.windowBytes) throws(CaptureFileError) {
        try unsafe self.init(name: name, closing: closeWhenDone ? fileDescriptor : -1, windowBytes: windowBytes) { buffer in
            unsafe readRetrying(fileDescriptor, buffer.baseAddress, buffer.count)
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
        if state.isPcapNG {
            // The blocks before the first packet, as CaptureFileReader.init reads them.
            do {
                while true {
                    try window.holdBlock(&state)
                    if try state.readBlock(window.bytes, untilPacket: true) != .other { break }
                }
            } catch {
                // A bad first section header rejects the stream; later faults surface from advance().
                guard !state.sections.isEmpty else { throw error }
                state.error = error
            }
        }
        _window = window
        _state = state
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
        if let error = _state.error { throw error }
        do {
            if _state.isPcapNG {
                while true {
                    try _window.holdBlock(&_state)
                    let step = try _state.readBlock(_window.bytes, untilPacket: false)
                    if step == .packet { return true }
                    if step == .end { return false }
                }
            }
            try _window.holdPcapRecord(&_state)
            return try _state.advancePcap(_window.bytes)
        } catch {
            _state.error = error
            throw error
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

    /// `fill` from the state's offset; the state's `streamBase` follows the window's start.
    mutating func fill(_ state: inout _ReaderState, need: Int) throws(CaptureFileError) {
        try fill(&state.offset, need: need, prefetched: &state.prefetchedUpTo)
        state.streamBase = base
    }

    /// Makes sure the pcap record at the state's offset is held whole, or the stream ended.
    mutating func holdPcapRecord(_ state: inout _ReaderState) throws(CaptureFileError) {
        try fill(&state, need: 16)
        guard count - state.offset >= 16 else { return }
        let captured = Int(bytes.uint32(at: state.offset + 8, bigEndian: state.bigEndian))
        try hold(&state, length: 16 + captured, what: "packet record")
    }

    /// Makes sure the pcapng block at the state's offset is held whole, or the stream ended.
    mutating func holdBlock(_ state: inout _ReaderState) throws(CaptureFileError) {
        try fill(&state, need: 12)
        guard count - state.offset >= 12 else { return }
        let at = state.offset
        var bigEndian = state.bigEndian
        if bytes.uint32(at: at, bigEndian: bigEndian) == _BlockType.sectionHeader {
            // Without the magic the reader reports it.
            guard let sectionBigEndian = _ReaderState._sectionByteOrder(bytes, at: at) else { return }
            bigEndian = sectionBigEndian
        }
        try hold(&state, length: Int(bytes.uint32(at: at + 4, bigEndian: bigEndian)), what: "block")
    }

    /// Reads until `length` bytes are held from the state's offset, up to the largest record
    /// the window takes; beyond that, an error unless the stream ended before.
    mutating func hold(_ state: inout _ReaderState, length: Int, what: String) throws(CaptureFileError) {
        let limit = CaptureStreamReader.maximumRecordBytes
        try fill(&state, need: min(length, limit + 1))
        if length > limit && count - state.offset > limit {
            throw CaptureFileError(.corrupt, fileName: name, offset: base + state.offset,
                                   message: "\(what) of \(length) bytes is longer than the \(limit >> 20) MiB a stream reader holds")
        }
    }
}
