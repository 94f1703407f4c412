import CaptureCore
import Foundation
import PodTapTestSupport
import Synchronization
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

/// The next piece size, 1 to `largest` bytes, from a xorshift generator's `state` (not 0).
func nextPiece(_ state: inout UInt64, largest: Int) -> Int {
    state ^= state << 13; state ^= state >> 7; state ^= state << 17
    return Int(state % UInt64(largest)) + 1
}

/// Serves `bytes` in pieces whose sizes come from a seeded generator (1 to `largest` bytes).
func chunkedSource(_ bytes: [UInt8], seed: UInt64, largest: Int) -> (UnsafeMutableRawBufferPointer) -> Int {
    var at = 0
    var state = seed | 1
    return { buffer in
        let n = min(nextPiece(&state, largest: largest), buffer.count, bytes.count - at)
        guard n > 0 else { return 0 }
        unsafe bytes.withUnsafeBytes { unsafe buffer.baseAddress!.copyMemory(from: $0.baseAddress! + at, byteCount: n) }
        at += n
        return n
    }
}

@Suite @MainActor struct CaptureStreamReaderTests {
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
        let header = classicPcap(records: [])  // snaplen 65535, Ethernet
        let record = pcapRecord([UInt8](repeating: 0xAB, count: caplen))
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
        var bytes = classicPcap(records: [])
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

    /// As a `CaptureSource` over a real pipe: `poll` lends the packets whose bytes have
    /// arrived, returns 0 without waiting for a record that has only partly arrived, waits
    /// (negative timeout) until the rest comes, and reports the end through `isFinished`.
    @Test func pollLendsWhatHasArrivedAndWaitsAtMostTheTimeout() throws {
        var fds: [Int32] = [0, 0]
        #expect(unsafe pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        defer { close(readEnd) }
        func send(_ bytes: [UInt8]) { writeAll(writeEnd, bytes) }
        let header = classicPcap(records: [])
        // Three records of 60, 100 and 300 bytes, each filled with its number (the 64-byte
        // window has to grow for the last).
        let records = [(1, 60), (2, 100), (3, 300)].map { number, size in
            pcapRecord([UInt8](repeating: UInt8(number), count: size), seconds: UInt32(number))
        }
        send(header)
        var reader = try CaptureStreamReader(fileDescriptor: readEnd, name: "pipe", windowBytes: 64)
        var seen: [[UInt8]] = []
        func poll(_ timeout: Int32) throws -> Int {
            try reader.poll(timeoutMilliseconds: timeout) { p in seen.append(unsafe p.bytes.withUnsafeBytes { unsafe Array($0) }) }
        }
        #expect(try poll(0) == 0)
        send(Array(records[0][..<10]))
        #expect(try poll(0) == 0)
        #expect(try poll(30) == 0)  // returns when the time is up, with the record still incomplete
        send(Array(records[0][10...]) + records[1] + Array(records[2][..<7]))
        #expect(try poll(0) == 2)
        #expect(seen == [[UInt8](repeating: 1, count: 60), [UInt8](repeating: 2, count: 100)])
        #expect(try poll(0) == 0)
        let early = reader.isFinished
        #expect(!early)
        let rest = Array(records[2][7...])
        let writer = Thread {
            usleep(50_000)
            _ = unsafe rest.withUnsafeBytes { unsafe write(writeEnd, $0.baseAddress, $0.count) }
            close(writeEnd)
        }
        writer.start()
        #expect(try poll(-1) == 1)  // waited for the rest of the record
        #expect(seen.last == [UInt8](repeating: 3, count: 300))
        while try poll(-1) > 0 {}
        let (finished, statistics, window) = (reader.isFinished, reader.statistics, reader.windowCapacity)
        #expect(finished)
        #expect(statistics.delivered == 3)
        #expect(statistics.batches == 2)
        #expect(window == 64)  // grown for the 300-byte record, back to its usual size after it
    }

    /// Every corpus file written into a real pipe in random pieces by another thread and read
    /// with `poll` (timeouts of 0 and 1 ms, so records often arrive in parts between calls):
    /// the same packets, interfaces, sections and error as the file reader's.
    @Test func pollReadsEveryCorpusFileLikeTheFileReader() throws {
        _ = signal(SIGPIPE, SIG_IGN)  // a writer whose reader stopped gets EPIPE
        var differing: [String] = []
        for (index, file) in (Corpus.wellformed + Corpus.malformed).enumerated() {
            let bytes = try Corpus.bytes(file)
            var expected = readAll(bytes: bytes, name: file)
            for i in expected.packets.indices {
                expected.packets[i].comments = []
                expected.packets[i].end = 0
            }
            var fds: [Int32] = [0, 0]
            #expect(unsafe pipe(&fds) == 0)
            let (readEnd, writeEnd) = (fds[0], fds[1])
            let writer = Thread {
                var at = 0, state = UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15
                while at < bytes.count {
                    let n = min(nextPiece(&state, largest: 3000), bytes.count - at)
                    let wrote = unsafe bytes.withUnsafeBytes { unsafe write(writeEnd, $0.baseAddress! + at, n) }
                    if wrote <= 0 { break }  // the reader stopped (EPIPE)
                    at += wrote
                    if state & 7 == 0 { usleep(200) }
                }
                close(writeEnd)
            }
            writer.start()
            var got = ReadResult()
            do {
                var reader = try CaptureStreamReader(fileDescriptor: readEnd, name: file, windowBytes: 64)
                var calls = 0
                do {
                    while !reader.isFinished {
                        calls += 1
                        _ = try reader.poll(timeoutMilliseconds: calls % 2 == 0 ? 0 : 1) { p in
                            got.packets.append(CopiedPacket(p, comments: [], end: 0))
                        }
                        if calls > 10_000_000 { break }
                    }
                } catch {
                    #expect(error.code == .file)
                    #expect(error.message == expected.error?.description, "\(file)")
                    got.error = expected.error  // the message matched (or the line above failed)
                }
                got.interfaces = reader.interfaces
                got.sections = reader.sections
                got.format = reader.format
                got.bytesRead = expected.error == nil ? reader.bytesRead : expected.bytesRead
            } catch {
                got.error = error
                got.openFailed = true
                got.format = expected.format
            }
            close(readEnd)
            while !writer.isFinished { usleep(1000) }
            if got.packets != expected.packets || got.error != expected.error || got.openFailed != expected.openFailed
                || got.interfaces != expected.interfaces || got.sections != expected.sections || got.bytesRead != expected.bytesRead
            {
                differing.append("\(file): \(got.packets.count) packets, \(got.error.map(String.init(describing:)) ?? "no error"); file \(expected.packets.count), \(expected.error.map(String.init(describing:)) ?? "no error")")
            }
        }
        #expect(differing.isEmpty, "\(differing.prefix(5))")
    }

    /// A long record grows the window; once it is read, the window returns to its usual size
    /// (a stream that once carried a jumbo block does not keep its memory).
    @Test func theWindowShrinksAfterALongRecord() throws {
        var bytes = classicPcap(snapLength: 0xF_FFFF, records: [])
        func record(_ size: Int, _ fill: UInt8) -> [UInt8] { pcapRecord([UInt8](repeating: fill, count: size)) }
        bytes += record(100, 1) + record(100_000, 2)
        for i in 0 ..< 2000 { bytes += record(200, UInt8(truncatingIfNeeded: i)) }
        var reader = try CaptureStreamReader(name: "jumbo", windowBytes: 4096, read: chunkedSource(bytes, seed: 11, largest: 8192))
        var largest = 0, packets = 0
        while try reader.advance() {
            packets += 1
            largest = max(largest, reader.windowCapacity)
        }
        let window = reader.windowCapacity
        #expect(packets == 2002)
        #expect(largest >= 100_016)
        #expect(window == 4096)
        #expect(readAll(bytes: bytes, name: "jumbo").packets.count == 2002)
    }

    /// A pcapng writer such as `dumpcap -w -` sends its section header and interface blocks
    /// at once and its first packet whenever there is one. Opening reads the section header
    /// and the blocks that have arrived, and does not wait for the first packet, so a capture
    /// loop can `poll` a stream that is still quiet.
    @Test(arguments: [false, true])
    func openingAPcapNGStreamDoesNotWaitForTheFirstPacket(interfaceSentWithHeader: Bool) throws {
        _ = signal(SIGPIPE, SIG_IGN)
        var b = PcapNGBuilder()
        b.shb()
        let shb = b.bytes
        b.bytes = []
        b.idb(linkType: 1, snapLength: 262_144)
        let idb = b.bytes
        b.bytes = []
        b.epb(timestamp: 1, data: [UInt8](repeating: 7, count: 60))
        let epb = b.bytes

        var fds: [Int32] = [0, 0]
        #expect(unsafe pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        defer { close(readEnd) }
        writeAll(writeEnd, interfaceSentWithHeader ? shb + idb : shb)
        let rest = (interfaceSentWithHeader ? [] : idb) + epb
        // Should opening wait for more, this sends the rest after 3 s and says it had to.
        let watchdog = Watchdog(after: 3) {
            writeAll(writeEnd, rest)
            close(writeEnd)
        }
        var reader = try CaptureStreamReader(fileDescriptor: readEnd, name: "dumpcap-like")
        let waited = watchdog.cancel()
        #expect(!waited, "opening waited for blocks that were not sent")
        guard !waited else { return }
        let interfacesAtOpening = reader.interfaces.count
        #expect(interfacesAtOpening == (interfaceSentWithHeader ? 1 : 0))
        var seen: [[UInt8]] = []
        func poll(_ timeout: Int32) throws -> Int {
            try reader.poll(timeoutMilliseconds: timeout) { p in seen.append(unsafe p.bytes.withUnsafeBytes { unsafe Array($0) }) }
        }
        #expect(try poll(0) == 0)
        if !interfaceSentWithHeader {
            writeAll(writeEnd, idb)
            #expect(try poll(20) == 0)
            let interfaces = reader.interfaces.count
            #expect(interfaces == 1)  // read by poll, with no packet yet
        }
        writeAll(writeEnd, epb)
        #expect(try poll(1000) == 1)
        #expect(seen == [[UInt8](repeating: 7, count: 60)])
        close(writeEnd)
        #expect(try poll(-1) == 0)
        let finished = reader.isFinished
        #expect(finished)
    }

    /// The real writer: `dumpcap -i lo -w -`, quiet when the reader opens its output, then
    /// three datagrams to a loopback port that only this test uses, then SIGINT.
    @Test func readsAQuietDumpcapStreamAsItComes() throws {
        guard let dumpcap = which("dumpcap") else {
            Issue.record("dumpcap is not installed (Debian: wireshark-common)")
            return
        }
        // The datagrams' receiver, on a free port (no ICMP errors); dumpcap keeps only that port.
        let receiver = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(receiver >= 0)
        defer { close(receiver) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = unsafe withUnsafeMutablePointer(to: &address) { p in
            unsafe p.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe bind(receiver, $0, length) == 0 && getsockname(receiver, $0, &length) == 0 }
        }
        #expect(bound)
        let port = UInt16(bigEndian: address.sin_port)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: dumpcap)
        process.arguments = ["-q", "-i", "lo", "-f", "udp port \(port)", "-w", "-"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try runWithShellSignals(process)
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        let payloads = (1 ... 3).map { Array("podtap dumpcap \($0)".utf8) }
        let destination = address
        let sendDatagrams: @Sendable () -> Void = {
            let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var to = destination
            for payload in payloads {
                _ = unsafe withUnsafePointer(to: &to) { p in
                    unsafe p.withMemoryRebound(to: sockaddr.self, capacity: 1) { a in
                        unsafe payload.withUnsafeBytes { unsafe sendto(sender, $0.baseAddress, $0.count, 0, a, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                    }
                }
            }
            close(sender)
        }
        // dumpcap writes its header and interface blocks when it starts capturing and nothing
        // more until a packet comes. Should opening wait for one, this sends them after 10 s.
        let watchdog = Watchdog(after: 10, sendDatagrams)
        var reader = try CaptureStreamReader(fileDescriptor: output.fileHandleForReading.fileDescriptor, name: "dumpcap")
        let waited = watchdog.cancel()
        #expect(!waited, "opening waited for dumpcap's first packet")
        #expect(try reader.poll(timeoutMilliseconds: 0) { _ in } == 0)
        let interfaces = reader.interfaces
        #expect(interfaces.count == 1 && interfaces.first?.linkType == .ethernet)
        if !waited { sendDatagrams() }

        var seen: [[UInt8]] = []
        let deadline = ContinuousClock.now + .seconds(10)
        while seen.count < 3, ContinuousClock.now < deadline {
            _ = try reader.poll(timeoutMilliseconds: 200) { p in seen.append(unsafe p.bytes.withUnsafeBytes { unsafe Array($0) }) }
        }
        #expect(seen.count == 3)
        for (packet, payload) in zip(seen, payloads) {
            #expect(packet.count == 14 + 20 + 8 + payload.count && Array(packet.suffix(payload.count)) == payload)
        }
        // SIGINT: dumpcap writes its statistics block and closes; the stream ends cleanly.
        process.interrupt()
        let end = ContinuousClock.now + .seconds(10)
        while !reader.isFinished, ContinuousClock.now < end {
            _ = try reader.poll(timeoutMilliseconds: 200) { _ in seen.append([]) }
        }
        let (finished, delivered) = (reader.isFinished, reader.statistics.delivered)
        #expect(finished)
        #expect(seen.count == 3 && delivered == 3)
    }
}


/// Writes all of `bytes` to `fd`.
private func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    let written = unsafe bytes.withUnsafeBytes { unsafe write(fd, $0.baseAddress, $0.count) }
    #expect(written == bytes.count)
}

/// Runs `action` on its own thread after `seconds` unless cancelled first; so a test whose
/// code under test waits for input it should not need ends with a failure, not a hang.
private final class Watchdog: Sendable {
    private let state = Mutex<(cancelled: Bool, fired: Bool)>((false, false))

    init(after seconds: Double, _ action: @escaping @Sendable () -> Void) {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        Thread { [self] in
            while ContinuousClock.now < deadline {
                if state.withLock({ $0.cancelled }) { return }
                usleep(10_000)
            }
            let fire = state.withLock { s in
                if s.cancelled { return false }
                s.fired = true
                return true
            }
            if fire { action() }
        }.start()
    }

    /// Stops the action if it has not run. - Returns: whether it had already fired.
    func cancel() -> Bool {
        state.withLock { s in
            s.cancelled = true
            return s.fired
        }
    }
}
