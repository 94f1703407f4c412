internal import Glibc

/// A buffered, EINTR-safe writer to a file descriptor, shared by the capture file writers.
///
/// Values are stored little-endian. Appends go to a fixed buffer that is written out when
/// full, on `flush()` and on `close()`; nothing is allocated after `init`.
@safe struct _FileOutput: ~Copyable {
    static let bufferSize = 128 * 1024

    let fileDescriptor: Int32
    let closesDescriptor: Bool
    let name: String
    private let buffer: UnsafeMutableRawPointer
    private(set) var buffered = 0
    /// Bytes handed to `append` so far (written or buffered).
    private(set) var bytesAppended = 0
    private(set) var isClosed = false

    /// Creates or truncates the file at `path` (mode 0644).
    init(path: String) throws(CaptureFileError) {
        var fd: Int32
        repeat {
            fd = unsafe open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        } while fd < 0 && Glibc.errno == EINTR
        guard fd >= 0 else {
            throw CaptureFileError(.cannotOpen(errno: Glibc.errno), fileName: path, message: "cannot create")
        }
        self.init(fileDescriptor: fd, name: path, closesDescriptor: true)
    }

    /// Writes to `fileDescriptor` (e.g. 1 for stdout), closing it on `close()` only if told to.
    init(fileDescriptor: Int32, name: String, closesDescriptor: Bool) {
        precondition(fileDescriptor >= 0, "invalid file descriptor \(fileDescriptor)")
        self.fileDescriptor = fileDescriptor
        self.closesDescriptor = closesDescriptor
        self.name = name
        unsafe self.buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.bufferSize, alignment: 16)
    }

    deinit {
        if !isClosed {
            // Best effort: errors are only reported by an explicit close().
            _ = unsafe writeAll(to: fileDescriptor, UnsafeRawBufferPointer(start: buffer, count: buffered))
            if closesDescriptor { _ = Glibc.close(fileDescriptor) }
        }
        unsafe buffer.deallocate()
    }

    // MARK: Appending

    /// Makes room for `count` contiguous bytes (at most the buffer size) in the buffer.
    @inline(__always)
    mutating func reserve(_ count: Int) throws(CaptureFileError) {
        if buffered + count > Self.bufferSize { try flush() }
    }

    @inline(__always)
    mutating func appendUInt32(_ value: UInt32) throws(CaptureFileError) {
        try reserve(4)
        unsafe buffer.storeBytes(of: value.littleEndian, toByteOffset: buffered, as: UInt32.self)
        buffered += 4
        bytesAppended += 4
    }

    @inline(__always)
    mutating func appendUInt16(_ value: UInt16) throws(CaptureFileError) {
        try reserve(2)
        unsafe buffer.storeBytes(of: value.littleEndian, toByteOffset: buffered, as: UInt16.self)
        buffered += 2
        bytesAppended += 2
    }

    @inline(__always)
    mutating func appendUInt64(_ value: UInt64) throws(CaptureFileError) {
        try appendUInt32(UInt32(truncatingIfNeeded: value))
        try appendUInt32(UInt32(truncatingIfNeeded: value >> 32))
    }

    /// `count` (< 8) zero bytes of padding.
    mutating func appendZeros(_ count: Int) throws(CaptureFileError) {
        try reserve(count)
        unsafe (buffer + buffered).initializeMemory(as: UInt8.self, repeating: 0, count: count)
        buffered += count
        bytesAppended += count
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) throws(CaptureFileError) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        if buffered + bytes.count <= Self.bufferSize {
            unsafe (buffer + buffered).copyMemory(from: source, byteCount: bytes.count)
            buffered += bytes.count
        } else {
            // Larger than what is left: flush, then buffer it or write it straight through.
            try flush()
            if bytes.count <= Self.bufferSize / 2 {
                unsafe buffer.copyMemory(from: source, byteCount: bytes.count)
                buffered = bytes.count
            } else {
                try unsafe writeThrough(source, bytes.count)
            }
        }
        bytesAppended += bytes.count
    }

    mutating func append(_ bytes: RawSpan) throws(CaptureFileError) {
        try unsafe bytes.withUnsafeBytes { (raw) throws(CaptureFileError) in try unsafe append(raw) }
    }

    /// `string`'s UTF-8 bytes.
    mutating func append(utf8 string: String) throws(CaptureFileError) {
        var string = string
        let count = string.utf8.count
        guard count <= Self.bufferSize else {
            try unsafe append(Array(string.utf8).span.bytes)
            return
        }
        try reserve(count)
        let target = unsafe buffer + buffered
        string.withUTF8 { unsafe target.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        buffered += count
        bytesAppended += count
    }

    // MARK: Output

    mutating func flush() throws(CaptureFileError) {
        guard buffered > 0 else { return }
        let count = buffered
        buffered = 0
        try unsafe writeThrough(UnsafeRawPointer(buffer), count)
    }

    /// Flushes and, if owned, closes the descriptor. Idempotent.
    mutating func close() throws(CaptureFileError) {
        guard !isClosed else { return }
        defer { isClosed = true }
        var failure: CaptureFileError? = nil
        do { try flush() } catch { failure = error }
        if closesDescriptor, Glibc.close(fileDescriptor) != 0, failure == nil, Glibc.errno != EINTR {
            failure = CaptureFileError(.cannotWrite(errno: Glibc.errno), fileName: name, message: "close failed")
        }
        if let failure { throw failure }
    }

    private func writeThrough(_ pointer: UnsafeRawPointer, _ count: Int) throws(CaptureFileError) {
        let error = unsafe writeAll(to: fileDescriptor, UnsafeRawBufferPointer(start: pointer, count: count))
        if error != 0 {
            throw CaptureFileError(.cannotWrite(errno: error), fileName: name, message: "write failed")
        }
    }
}

/// Bytes of padding that bring `length` to a multiple of 4.
@inline(__always)
func _padding4(_ length: Int) -> Int { (4 - length & 3) & 3 }

/// Writes all of `bytes` to `fd`, retrying on `EINTR` and short writes and waiting on
/// `EAGAIN` (a non-blocking pipe). Shared by the capture writers and every flow output.
/// - Returns: 0, or the `errno` of the failure (`EIO` if the descriptor accepts nothing).
public func writeAll(to fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
    guard let base = unsafe bytes.baseAddress else { return 0 }
    let count = bytes.count
    var done = 0
    while done < count {
        let n = unsafe Glibc.write(fd, base + done, count - done)
        if n > 0 {
            done += n
        } else if n == 0 {
            return EIO
        } else {
            let error = Glibc.errno
            if shouldRetry(fd, after: error, waitingFor: POLLOUT) { continue }
            return error
        }
    }
    return 0
}
