internal import Glibc

/// The read-only bytes of a whole capture file: a private `mmap(2)` of a regular file, or a
/// heap copy for pipes, character devices and in-memory tests. Unmaps or frees in `deinit`.
///
/// The mapping assumes nobody truncates the file while it is mapped (that raises `SIGBUS`,
/// as with every mmap-based reader).
@safe public struct MappedCaptureFile: ~Copyable {
    @usableFromInline let _base: UnsafeRawPointer?
    @usableFromInline let _count: Int
    @usableFromInline let _isMapped: Bool
    /// The path or name given at creation, used in error messages.
    public let name: String

    /// Maps the file at `path`; falls back to reading it into memory when it cannot be
    /// mapped (pipes such as `/dev/stdin`).
    /// - Throws: ``CaptureFileError`` with ``CaptureFileError/Code/cannotOpen(errno:)`` or
    ///   ``CaptureFileError/Code/cannotRead(errno:)``.
    public init(path: String) throws(CaptureFileError) {
        self.name = path
        var fd: Int32
        repeat { fd = unsafe open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && Glibc.errno == EINTR
        guard fd >= 0 else {
            throw CaptureFileError(.cannotOpen(errno: Glibc.errno), fileName: path, message: "cannot open")
        }
        defer { _ = Glibc.close(fd) }
        var info = stat()
        guard unsafe fstat(fd, &info) == 0 else {
            throw CaptureFileError(.cannotOpen(errno: Glibc.errno), fileName: path, message: "cannot stat")
        }
        if (info.st_mode & S_IFMT) == S_IFREG {
            let size = Int(info.st_size)
            if size == 0 {
                unsafe (_base, _count, _isMapped) = (nil, 0, false)
                return
            }
            let mapped = unsafe mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            if let mapped = unsafe mapped, unsafe mapped != MAP_FAILED {
                _ = unsafe madvise(mapped, size, MADV_SEQUENTIAL)
                unsafe (_base, _count, _isMapped) = (UnsafeRawPointer(mapped), size, true)
                return
            }
        }
        unsafe (_base, _count) = try Self._readAll(fd: fd, name: path)
        _isMapped = false
    }

    /// Copies `bytes` (for fuzzers and tests).
    public init(bytes: [UInt8], name: String) {
        self.name = name
        self._isMapped = false
        self._count = bytes.count
        if bytes.isEmpty {
            unsafe self._base = nil
        } else {
            let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 16)
            unsafe bytes.withUnsafeBytes { unsafe memory.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            unsafe self._base = UnsafeRawPointer(memory)
        }
    }

    deinit {
        guard let base = unsafe _base else { return }
        if _isMapped {
            _ = unsafe munmap(UnsafeMutableRawPointer(mutating: base), _count)
        } else {
            unsafe base.deallocate()
        }
    }

    /// Size of the file in bytes.
    @inlinable public var count: Int { _count }

    /// The whole file, valid while `self` is.
    @inlinable public var bytes: RawSpan {
        @_lifetime(borrow self) borrowing get {
            let span = unsafe RawSpan(_unsafeBytes: UnsafeRawBufferPointer(start: _base, count: _count))
            return unsafe _overrideLifetime(span, borrowing: self)
        }
    }

    /// Reads `fd` to its end into a heap buffer that grows with what is actually read.
    private static func _readAll(fd: Int32, name: String) throws(CaptureFileError) -> (UnsafeRawPointer?, Int) {
        var capacity = 0
        var count = 0
        var memory: UnsafeMutableRawPointer? = nil
        while true {
            if count == capacity {
                let newCapacity = max(64 * 1024, capacity * 2)
                let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
                if let old = unsafe memory {
                    unsafe grown.copyMemory(from: old, byteCount: count)
                    unsafe old.deallocate()
                }
                unsafe memory = unsafe grown
                capacity = newCapacity
            }
            let n = unsafe readRetrying(fd, memory! + count, capacity - count)
            if n == 0 { break }
            if n < 0 {
                unsafe memory?.deallocate()
                throw CaptureFileError(.cannotRead(errno: Int32(-n)), fileName: name, offset: count, message: "read failed")
            }
            count += n
        }
        if count == 0 {
            unsafe memory?.deallocate()
            return (nil, 0)
        }
        return (UnsafeRawPointer(memory), count)
    }
}

/// `read(2)` that retries when interrupted and waits (`poll`) instead of spinning on a
/// non-blocking descriptor with nothing to read. Returns the bytes read, 0 at the end, or
/// the negated `errno` of a failure.
func readRetrying(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    while true {
        let n = unsafe read(fd, buffer, count)
        if n >= 0 { return n }
        let error = Glibc.errno
        if shouldRetry(fd, after: error, waitingFor: POLLIN) { continue }
        return -Int(error)
    }
}

/// Whether a `read(2)` or `write(2)` of `fd` that failed with `error` is to be tried again:
/// at once after `EINTR`; after `EAGAIN` (a non-blocking descriptor), once poll(2) says
/// `events` (`POLLIN`, `POLLOUT`) can proceed, instead of spinning.
func shouldRetry(_ fd: Int32, after error: Int32, waitingFor events: Int32) -> Bool {
    if error == EINTR { return true }
    guard error == EAGAIN else { return false }
    var waiter = pollfd(fd: fd, events: Int16(events), revents: 0)
    _ = unsafe poll(&waiter, 1, -1)
    return true
}
