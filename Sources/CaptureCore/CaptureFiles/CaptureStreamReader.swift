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
///
/// As a ``CaptureSource`` (made from a file descriptor), ``poll(timeoutMilliseconds:_:)``
/// lends the packets whose bytes have arrived and waits for more at most the timeout, so a
/// capture loop keeps its own time (flow timeouts, exports) over a stream that goes quiet;
/// ``isFinished`` tells the end of the stream from a timeout.
public struct CaptureStreamReader: ~Copyable {
    /// The window's usual size: reads fill it, records already read make way.
    public static var windowBytes: Int { 1 << 20 }
    /// The longest record or block the window grows to hold.
    public static var maximumRecordBytes: Int { 64 << 20 }

    var _window: _StreamWindow
    /// Parses the window; its `streamBase` follows the window's start, and its `error`
    /// (the first one, sticky) is thrown again by every later ``advance()``.
    var _state: _ReaderState
    /// The stream ended and every packet in it was delivered.
    var _finished = false
    /// Calls of ``poll(timeoutMilliseconds:_:)`` that delivered packets.
    var _pollBatches: UInt64 = 0

    /// Reads from `fileDescriptor` (left open unless `closeWhenDone`), which may block or not.
    /// `name` is used in errors; `windowBytes` (at least 64) sets the window's usual size.
    /// Opening reads the file header, waiting for it if it has not arrived (pcapng: the first
    /// section header block; the blocks after it up to the first packet are read now if they
    /// have arrived, else by the first ``advance()`` or ``poll(timeoutMilliseconds:_:)``, so
    /// ``interfaces`` may grow after opening).
    /// - Throws: ``CaptureFileError`` when the stream is not a capture, or its file header
    ///   (pcapng: first section header) is unsupported, truncated or corrupt, or reading fails.
    public init(fileDescriptor: Int32, name: String, closeWhenDone: Bool = false,
                windowBytes: Int = CaptureStreamReader.windowBytes) throws(CaptureFileError) {
        try unsafe self.init(name: name, descriptor: fileDescriptor, closing: closeWhenDone ? fileDescriptor : -1,
                             windowBytes: windowBytes) { buffer in
            unsafe readRetrying(fileDescriptor, buffer.baseAddress, buffer.count)
        }
    }

    /// Reads from `read`, which fills the start of the buffer it is given and returns the
    /// number of bytes it put there, 0 at the end of the stream, or a negated `errno`
    /// (tests and fuzzers: any split of the bytes must read the same). Such a reader cannot
    /// wait with a timeout: its ``poll(timeoutMilliseconds:_:)`` calls `read` as
    /// ``advance()`` does.
    public init(name: String, windowBytes: Int = CaptureStreamReader.windowBytes,
                read: @escaping (UnsafeMutableRawBufferPointer) -> Int) throws(CaptureFileError) {
        try unsafe self.init(name: name, descriptor: -1, closing: -1, windowBytes: windowBytes, read: read)
    }

    init(name: String, descriptor: Int32, closing: Int32, windowBytes: Int,
         read: @escaping (UnsafeMutableRawBufferPointer) -> Int) throws(CaptureFileError) {
        var window = unsafe _StreamWindow(name: name, descriptor: descriptor, closing: closing,
                                          capacity: max(64, windowBytes), read: read)
        var offset = 0, prefetched = 0
        try window.fill(&offset, need: 24, prefetched: &prefetched)
        var state = try _ReaderState(window.bytes, name: name)
        if state.isPcapNG {
            // The first section header, waiting for it; then the blocks before the first packet
            // that have arrived. A writer such as `dumpcap -w -` sends its header and interface
            // blocks at once and its first packet whenever there is one: waiting for that here
            // would block `poll` users before they could poll. (A window that reads a `read`
            // closure always waits: it reads them all, as CaptureFileReader.init does.)
            do {
                while try window.holdBlock(&state) {
                    if try state.readBlock(window.bytes, untilPacket: true) != .other { break }
                    window.waits = false
                }
            } catch {
                // A bad first section header rejects the stream; later faults surface from advance().
                guard !state.sections.isEmpty else { throw error }
                state.error = error
            }
            window.waits = true
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
    /// The window's size now: the size it was opened with, or larger while a longer record
    /// is held (it returns to the usual size when it next makes room after that record).
    public var windowCapacity: Int { _window.capacity }
    /// The stream ended cleanly and every packet in it was delivered: ``advance()`` returned
    /// `false`, or ``poll(timeoutMilliseconds:_:)`` reached the end.
    public var isFinished: Bool { _finished }

    /// Moves to the next packet, reading from the stream as needed (this may block).
    /// - Returns: `true` when ``packet`` now holds a packet, `false` at the clean end.
    /// - Throws: ``CaptureFileError`` at the first truncated or corrupt record or block, or
    ///   read failure, after every packet before it was delivered; later calls throw it again.
    public mutating func advance() throws(CaptureFileError) -> Bool {
        try _step() == .packet
    }

    enum _Step { case packet, end, wouldWait }

    /// The next packet; `.wouldWait` only when the window does not wait (``poll``) and the
    /// next record has not arrived whole.
    mutating func _step() throws(CaptureFileError) -> _Step {
        _state.hasCurrent = false
        if let error = _state.error { throw error }
        do {
            if _state.isPcapNG {
                while true {
                    guard try _window.holdBlock(&_state) else { return .wouldWait }
                    let step = try _state.readBlock(_window.bytes, untilPacket: false)
                    if step == .packet { return .packet }
                    if step == .end { break }
                }
            } else {
                guard try _window.holdPcapRecord(&_state) else { return .wouldWait }
                if try _state.advancePcap(_window.bytes) { return .packet }
            }
            _finished = true
            return .end
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
    /// The descriptor read, for poll(2); -1 when `read` is a closure.
    let descriptor: Int32
    let closing: Int32
    /// Whether a fill waits for the bytes it needs. When not, it reads only what poll(2)
    /// says has arrived on `descriptor`; a window without one (a `read` closure) always waits.
    var waits = true
    let read: (UnsafeMutableRawBufferPointer) -> Int
    var buffer: UnsafeMutableRawPointer
    var capacity: Int
    /// The capacity opened with, which the window returns to once a longer record is read.
    let usualCapacity: Int
    /// Bytes held, from the start of `buffer`.
    var count = 0
    /// Stream offset of the first byte held.
    var base = 0
    var atEnd = false

    init(name: String, descriptor: Int32, closing: Int32, capacity: Int,
         read: @escaping (UnsafeMutableRawBufferPointer) -> Int) {
        self.name = name
        self.descriptor = descriptor
        self.closing = closing
        unsafe self.read = unsafe read
        self.capacity = capacity
        usualCapacity = capacity
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

    /// Reads until `need` bytes are held from `offset` on, or the stream ends, or (when the
    /// window does not wait) no more bytes have arrived. Bytes before
    /// `offset` are dropped when room is needed: `offset` and `prefetched` (buffer offsets)
    /// move with them. The buffer grows (doubling, at most to `need`) only as bytes arrive, so
    /// a record that claims more than the stream holds costs no more than the stream.
    mutating func fill(_ offset: inout Int, need: Int, prefetched: inout Int) throws(CaptureFileError) {
        guard count - offset < need, !atEnd else { return }
        if offset + need > capacity && offset > 0 {
            let kept = count - offset
            if capacity > usualCapacity && need <= usualCapacity {
                // The long record that grew the window has been read: back to the usual size.
                reallocate(usualCapacity, keeping: offset, kept)
            } else {
                unsafe buffer.copyMemory(from: buffer + offset, byteCount: kept)
            }
            base += offset
            count = kept
            prefetched = max(0, prefetched - offset)
            offset = 0
        }
        while count - offset < need {
            if count == capacity {
                reallocate(min(capacity * 2, offset + need), keeping: 0, count)
            }
            if !waits && descriptor >= 0 {
                var waiter = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                guard unsafe Glibc.poll(&waiter, 1, 0) > 0 else { return }
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

    /// Replaces the buffer by one of `newCapacity` bytes that starts with the `bytes` bytes
    /// held from `start` on.
    mutating func reallocate(_ newCapacity: Int, keeping start: Int, _ bytes: Int) {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        unsafe memory.copyMemory(from: buffer + start, byteCount: bytes)
        unsafe buffer.deallocate()
        unsafe buffer = memory
        capacity = newCapacity
    }

    /// `fill` from the state's offset; the state's `streamBase` follows the window's start.
    mutating func fill(_ state: inout _ReaderState, need: Int) throws(CaptureFileError) {
        try fill(&state.offset, need: need, prefetched: &state.prefetchedUpTo)
        state.streamBase = base
    }

    /// Makes sure the pcap record at the state's offset is held whole, or the stream ended.
    /// - Returns: `false` when the window does not wait and the record has not arrived whole.
    mutating func holdPcapRecord(_ state: inout _ReaderState) throws(CaptureFileError) -> Bool {
        guard try hold(&state, length: 16) else { return false }
        guard count - state.offset >= 16 else { return true }
        let captured = Int(bytes.uint32(at: state.offset + 8, bigEndian: state.bigEndian))
        return try hold(&state, length: 16 + captured, what: "packet record")
    }

    /// Makes sure the pcapng block at the state's offset is held whole, or the stream ended.
    /// - Returns: `false` when the window does not wait and the block has not arrived whole.
    mutating func holdBlock(_ state: inout _ReaderState) throws(CaptureFileError) -> Bool {
        guard try hold(&state, length: 12) else { return false }
        guard count - state.offset >= 12 else { return true }
        let at = state.offset
        var bigEndian = state.bigEndian
        if bytes.uint32(at: at, bigEndian: bigEndian) == _BlockType.sectionHeader {
            // Without the magic the reader reports it.
            guard let sectionBigEndian = _ReaderState._sectionByteOrder(bytes, at: at) else { return true }
            bigEndian = sectionBigEndian
        }
        return try hold(&state, length: Int(bytes.uint32(at: at + 4, bigEndian: bigEndian)), what: "block")
    }

    /// Reads until `length` bytes are held from the state's offset, up to the largest record
    /// the window takes; beyond that, an error unless the stream ended before.
    /// - Returns: `false` when the window does not wait and the bytes have not all arrived.
    mutating func hold(_ state: inout _ReaderState, length: Int, what: String = "header") throws(CaptureFileError) -> Bool {
        let limit = CaptureStreamReader.maximumRecordBytes
        let need = min(length, limit + 1)
        try fill(&state, need: need)
        if length > limit && count - state.offset > limit {
            throw CaptureFileError(.corrupt, fileName: name, offset: base + state.offset,
                                   message: "\(what) of \(length) bytes is longer than the \(limit >> 20) MiB a stream reader holds")
        }
        return count - state.offset >= need || atEnd
    }
}

extension CaptureStreamReader: CaptureSource {
    /// Lends up to 256 packets whose bytes have arrived. When none has, waits at most
    /// `timeoutMilliseconds` (0: not at all, negative: until one arrives or the stream ends)
    /// for one; a signal ends the wait early. A reader made from a `read` closure cannot wait
    /// with a timeout: it reads as ``advance()`` does.
    /// - Returns: the packets lent; 0 when the wait timed out or the stream ended
    ///   (``isFinished``).
    /// - Throws: ``CaptureSourceError`` (`.file`) with the ``CaptureFileError``'s message, at
    ///   the first damaged record, after every packet before it; or when poll(2) fails.
    public mutating func poll(
        timeoutMilliseconds: Int32, _ body: (borrowing PacketRecord) -> Void
    ) throws(CaptureSourceError) -> Int {
        var n = 0
        let start = Self.milliseconds()
        _window.waits = false
        defer { _window.waits = true }
        reading: while n < 256 {
            let step: _Step
            do {
                step = try _step()
            } catch {
                throw CaptureSourceError(.file, operation: "read \(error.fileName)", message: error.description)
            }
            switch step {
            case .packet:
                body(packet)
                n &+= 1
            case .end:
                break reading
            case .wouldWait:
                guard n == 0, timeoutMilliseconds != 0 else { break reading }
                var left: Int32 = -1
                if timeoutMilliseconds > 0 {
                    left = Int32(clamping: Int(timeoutMilliseconds) - (Self.milliseconds() - start))
                    guard left > 0 else { break reading }
                }
                var waiter = pollfd(fd: _window.descriptor, events: Int16(POLLIN), revents: 0)
                let ready = unsafe Glibc.poll(&waiter, 1, left)
                if ready == 0 { break reading }
                if ready < 0 {
                    let error = errno
                    if error == EINTR { break reading }
                    throw CaptureSourceError(.system, operation: "poll(\(fileName))", errno: error,
                                             message: "waiting for the stream failed")
                }
            }
        }
        if n > 0 { _pollBatches &+= 1 }
        return n
    }

    /// Every packet read so far (by ``poll(timeoutMilliseconds:_:)`` or ``advance()``) counts
    /// as received and delivered: a stream drops nothing, its writer blocks instead.
    public var statistics: CaptureStatistics {
        CaptureStatistics(everyPacketOf: packetCount, batches: _pollBatches)
    }

    static func milliseconds() -> Int {
        var now = timespec()
        unsafe clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
    }
}
