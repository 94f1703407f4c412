internal import Glibc

/// A capture file could not be opened, read or written.
///
/// Carries the file name (as given by the caller), the byte offset of the record or block
/// at fault (for read errors), the `errno` for system call failures, and a message:
///
/// ```
/// capture.pcap: byte offset 1234: truncated packet record (header says 1514 bytes, 200 remain)
/// ```
///
/// A reader that throws has already delivered every packet before ``offset``.
public struct CaptureFileError: Error, Hashable, CustomStringConvertible, Sendable {
    /// What went wrong.
    public enum Code: Hashable, Sendable {
        /// `open(2)`, `fstat(2)` or `mmap(2)` failed with this `errno`.
        case cannotOpen(errno: Int32)
        /// `read(2)` failed with this `errno` (files that cannot be mapped, such as pipes).
        case cannotRead(errno: Int32)
        /// `write(2)` or `close(2)` failed with this `errno`.
        case cannotWrite(errno: Int32)
        /// The file starts with neither a pcap nor a pcapng magic number.
        case notACaptureFile
        /// A pcap or pcapng version, or a header field value, this reader does not support.
        case unsupportedVersion
        /// The file ends in the middle of a header, record or block.
        case truncated
        /// A length, option or reference in the file is inconsistent.
        case corrupt
        /// A caller passed a value the format cannot represent.
        case invalidArgument
    }

    public var code: Code
    /// The path or name given when the file was opened.
    public var fileName: String
    /// Byte offset of the header, record or block at fault; `nil` for open and write errors.
    public var offset: Int?
    /// What was found, in words.
    public var message: String

    public init(_ code: Code, fileName: String, offset: Int? = nil, message: String) {
        self.code = code
        self.fileName = fileName
        self.offset = offset
        self.message = message
    }

    /// The `errno` for system call failures, otherwise `nil`.
    public var errno: Int32? {
        switch code {
        case .cannotOpen(let e), .cannotRead(let e), .cannotWrite(let e): e
        default: nil
        }
    }

    public var description: String {
        var text = fileName + ": "
        if let offset { text += "byte offset \(offset): " }
        text += message
        if let errno {
            text += ": " + (unsafe String(cString: strerror(errno))) + " (errno \(errno))"
        }
        return text
    }
}
