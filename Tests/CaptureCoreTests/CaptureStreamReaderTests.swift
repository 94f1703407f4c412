import CaptureCore
import Foundation
import Testing

/// Reads a stream to its end with `CaptureStreamReader`, as `readAll(bytes:)` does a file.
func readAllStreamed(_ open: () throws(CaptureFileError) -> CaptureStreamReader) -> (ReadResult, window: Int) {
    var result = ReadResult()
    var reader: CaptureStreamReader
    do {
        reader = try open()
    } catch {
        result.error = error
        result.openFailed = true
        return (result, 0)
    }
    do {
        while try reader.advance() {
            result.packets.append(CopiedPacket(reader.packet, comments: reader.packetComments, end: reader.bytesRead))
        }
    } catch {
        result.error = error
        #expect(throws: CaptureFileError.self) { _ = try reader.advance() }
    }
    result.interfaces = reader.interfaces
    result.sections = reader.sections
    result.format = reader.format
    result.bytesRead = reader.bytesRead
    return (result, reader.windowCapacity)
}

/// Serves `bytes` in pieces whose sizes come from a seeded generator (1 to `largest` bytes).
func chunkedSource(_ bytes: [UInt8], seed: UInt64, largest: Int) -> (UnsafeMutableRawBufferPointer) -> Int {
    var at = 0
    var state = seed | 1
    return { buffer in
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        let n = min(Int(state % UInt64(largest)) + 1, buffer.count, bytes.count - at)
        guard n > 0 else { return 0 }
        unsafe bytes.withUnsafeBytes { unsafe buffer.baseAddress!.copyMemory(from: $0.baseAddress! + at, byteCount: n) }
        at += n
        return n
    }
}

@Suite struct CaptureStreamReaderTests {
    static func same(_ stream: ReadResult, _ file: ReadResult, _ label: String) {
        #expect(stream.packets == file.packets, "\(label): \(stream.packets.count) packets, file \(file.packets.count)")
        #expect(stream.error == file.error, "\(label): \(stream.error.map(String.init(describing:)) ?? "no error") against \(file.error.map(String.init(describing:)) ?? "no error")")
        #expect(stream.openFailed == file.openFailed, "\(label)")
        #expect(stream.interfaces == file.interfaces, "\(label)")
        #expect(stream.sections == file.sections, "\(label)")
        #expect(stream.format == file.format, "\(label)")
        #expect(stream.bytesRead == file.bytesRead, "\(label)")
    }

    /// Every corpus file, well-formed or not, read as a stream in random pieces through a
    /// window of 64 bytes (every record makes it move or grow) and one of the default size:
    /// the same packets, offsets, interfaces, sections and error as the file reader.
    @Test(arguments: Corpus.wellformed + Corpus.malformed)
    func streamReadsWhatTheFileReaderReads(file: String) throws {
        let bytes = try Corpus.bytes(file)
        let expected = readAll(bytes: bytes, name: file)
        for (window, largest, seed) in [(64, 7, 1 as UInt64), (64, 3000, 2), (CaptureStreamReader.windowBytes, 70_000, 3)] {
            let (streamed, _) = readAllStreamed { () throws(CaptureFileError) in
                try CaptureStreamReader(name: file, windowBytes: window, read: chunkedSource(bytes, seed: seed, largest: largest))
            }
            Self.same(streamed, expected, "\(file), window \(window), pieces ≤ \(largest)")
        }
    }

    /// Every prefix of the truncation test's files, as a stream through a 64-byte window: the
    /// same packets and the same error, at the same stream offset, as the file reader's.
    @Test(arguments: CaptureFileCorpusTests.truncationFiles)
    func everyPrefixStreamsLikeTheFile(file: String) throws {
        let bytes = try Corpus.bytes(file)
        var differing = 0
        for cut in 0 ... bytes.count {
            let prefix = Array(bytes[..<cut])
            let expected = readAll(bytes: prefix, name: file)
            let (streamed, _) = readAllStreamed { () throws(CaptureFileError) in
                try CaptureStreamReader(name: file, windowBytes: 64,
                                        read: chunkedSource(prefix, seed: UInt64(cut), largest: 200))
            }
            if streamed.packets != expected.packets || streamed.error != expected.error || streamed.bytesRead != expected.bytesRead {
                differing += 1
                if differing <= 3 {
                    Issue.record("cut \(cut): \(streamed.error.map(String.init(describing:)) ?? "no error") against \(expected.error.map(String.init(describing:)) ?? "no error")")
                }
            }
        }
        #expect(differing == 0)
    }

    /// Found by FuzzCaptureFile: a big-endian section, then a section header without its
    /// byte-order magic. Whether that is "not a capture file" or "corrupt" must not depend on
    /// where the window starts (it was decided by the block's offset in the window).
    @Test func aBadSecondSectionHeaderIsCorruptWhereverTheWindowIs() throws {
        let bytes: [UInt8] = [
            0x0A, 0x0D, 0x0D, 0x0A, 0x00, 0x00, 0x00, 0x60, 0x1A, 0x2B, 0x3C, 0x4D, 0x00, 0x01, 0x00, 0x00,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x02, 0x00, 0x09, 0x41, 0x70, 0x70, 0x6C,
            0x65, 0x20, 0x4D, 0x42, 0x50, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x0C, 0x4F, 0x53, 0x2D, 0x58,
            0x20, 0x31, 0x30, 0x2E, 0x31, 0x30, 0x2E, 0x35, 0x00, 0x04, 0x00, 0x0F, 0x70, 0x63, 0x61, 0x70,
            0x5F, 0x77, 0x72, 0x69, 0x74, 0x65, 0x72, 0x2E, 0x6C, 0x75, 0x61, 0x00, 0x00, 0x01, 0x00, 0x07,
            0x74, 0x65, 0x73, 0x74, 0x30, 0x30, 0x38, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x60,
            0x0A, 0x0D, 0x0D, 0x0A, 0x00, 0x00, 0x00, 0x60, 0x1A, 0x2B, 0x3C, 0x55, 0x00, 0x01, 0x00, 0x00,
            0x2E, 0x31, 0x00, 0x00, 0x00, 0x00, 0x34,
        ]
        let expected = readAll(bytes: bytes, name: "second-shb")
        #expect(expected.error?.code == .corrupt && expected.error?.offset == 96)
        for window in [64, 96, 4096] {
            let (streamed, _) = readAllStreamed { () throws(CaptureFileError) in
                try CaptureStreamReader(name: "second-shb", windowBytes: window, read: chunkedSource(bytes, seed: 5, largest: 50))
            }
            Self.same(streamed, expected, "window \(window)")
        }
    }

    /// A real pipe, written by another thread while the reader reads.
    @Test func readsAPipeAsItIsWritten() throws {
        let file = "wellformed/pcapng-test-generator__output_le_difficult_test202.pcapng"
        let bytes = try Corpus.bytes(file)
        let pipe = Pipe()
        let writer = Thread {
            for start in stride(from: 0, to: bytes.count, by: 100) {
                pipe.fileHandleForWriting.write(Data(bytes[start ..< min(start + 100, bytes.count)]))
            }
            try? pipe.fileHandleForWriting.close()
        }
        writer.start()
        let fd = pipe.fileHandleForReading.fileDescriptor
        let (streamed, _) = readAllStreamed { () throws(CaptureFileError) in
            try CaptureStreamReader(fileDescriptor: fd, name: file, windowBytes: 256)
        }
        Self.same(streamed, readAll(bytes: bytes, name: file), "pipe")
        #expect(!streamed.packets.isEmpty)
    }

    /// 21.6 MB of pcap records: memory stays at the window's size, every packet is delivered.
    @Test func aLongStreamKeepsItsWindow() throws {
        let packets = 100_000, caplen = 200
        var header: [UInt8] = [0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0] + [UInt8](repeating: 0, count: 8)
        header += [0xFF, 0xFF, 0, 0, 1, 0, 0, 0]  // snaplen 65535, Ethernet
        var record = [UInt8](repeating: 0xAB, count: 16 + caplen)
        record.replaceSubrange(8 ..< 16, with: [200, 0, 0, 0, 200, 0, 0, 0])  // caplen = len = 200
        var sent = 0, index = 0, inRecord = 0
        let (streamed, window) = readAllStreamed { () throws(CaptureFileError) in
            try CaptureStreamReader(name: "generated") { buffer in
                var n = 0
                while n < buffer.count {
                    if sent < header.count {
                        unsafe buffer[n] = header[sent]; sent += 1; n += 1
                    } else if index < packets {
                        let take = min(record.count - inRecord, buffer.count - n)
                        unsafe record.withUnsafeBytes { unsafe (buffer.baseAddress! + n).copyMemory(from: $0.baseAddress! + inRecord, byteCount: take) }
                        n += take; inRecord += take
                        if inRecord == record.count { inRecord = 0; index += 1 }
                    } else { break }
                }
                return n
            }
        }
        #expect(streamed.error == nil)
        #expect(streamed.packets.count == packets)
        #expect(streamed.bytesRead == 24 + packets * (16 + caplen))
        #expect(window == CaptureStreamReader.windowBytes)
        #expect(streamed.packets.last?.bytes == [UInt8](repeating: 0xAB, count: caplen))
    }

    /// A record that claims more than the window may hold: an error at its offset once the
    /// limit is read, and the window no larger than the limit; the same claim in a stream
    /// that ends first reads as truncated, as a file does, with a window the stream's size.
    @Test func anOverlongRecordIsAnError() throws {
        var bytes: [UInt8] = [0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0] + [UInt8](repeating: 0, count: 8)
        bytes += [0xFF, 0xFF, 0, 0, 1, 0, 0, 0]
        bytes += [UInt8](repeating: 0, count: 8) + [0, 0, 0, 0x10, 0, 0, 0, 0x10]  // caplen 256 MiB
        let endless = readAllStreamed { () throws(CaptureFileError) in
            var at = 0
            return try CaptureStreamReader(name: "endless") { buffer in
                let n = buffer.count
                unsafe buffer.initializeMemory(as: UInt8.self, repeating: 0)
                for i in 0 ..< min(n, max(0, bytes.count - at)) { unsafe buffer[i] = bytes[at + i] }
                at += n
                return n
            }
        }
        let error = try #require(endless.0.error)
        #expect(error.code == .corrupt)
        #expect(error.offset == 24)
        #expect(error.description.contains("longer than the 64 MiB"), "\(error)")
        #expect(endless.window <= CaptureStreamReader.maximumRecordBytes + 1)
        let short = bytes + [UInt8](repeating: 0, count: 5000)
        let (streamed, window) = readAllStreamed { () throws(CaptureFileError) in
            try CaptureStreamReader(name: "short", windowBytes: 64, read: chunkedSource(short, seed: 9, largest: 4096))
        }
        Self.same(streamed, readAll(bytes: short, name: "short"), "short")
        #expect(streamed.error?.code == .truncated)
        // The window grew with the bytes that came, not with the 256 MiB claimed.
        #expect(window <= 2 * short.count, "window \(window)")
    }
}
