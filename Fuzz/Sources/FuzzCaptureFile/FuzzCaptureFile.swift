// libFuzzer harness: CaptureFileReader (classic pcap and pcapng), checked against
// CaptureStreamReader reading the same bytes in pieces, then every packet through
// PacketDecoder and FlowTracker, then PcapNGWriter (packets and interface statistics) and
// PcapWriter, reading both outputs back to check the round trips.
//
// Input: a whole capture file. Errors from the reader are expected; traps are bugs.
// Built with -sanitize=fuzzer(,address) and -parse-as-library: libFuzzer provides the driver.
import CaptureCore
import Glibc

/// An unlinked temporary file (one per fuzzing process) that a writer writes to and the
/// round trip reads back.
func scratchFile() -> Int32 {
    var template = Array("/tmp/podtap-fuzz-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    precondition(fd >= 0, "mkstemp failed")
    unlink(template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
    return fd
}
let pcapNGScratch = scratchFile()
let pcapScratch = scratchFile()

func rewind(_ fd: Int32) {
    precondition(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0)
}

func contents(of fd: Int32) -> [UInt8] {
    let count = Int(lseek(fd, 0, SEEK_END))
    precondition(count > 0)
    var bytes = [UInt8](repeating: 0, count: count)
    let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, 0) }
    precondition(got == count, "short read of a scratch file")
    return bytes
}

/// What a round trip compares: everything the writers keep of a packet.
struct WrittenPacket: Equatable {
    var bytes: [UInt8]
    var originalLength: Int
    var timestamp: Timestamp
    var linkType: LinkType
    var interfaceIndex: Int
    var direction: PacketDirection

    /// The packet as a writer with `snapLength` (0: none) and `resolution` stores it.
    init(_ record: borrowing PacketRecord, snapLength: Int, timestamp: Timestamp, direction: PacketDirection) {
        let captured = snapLength == 0 ? record.bytes.byteCount : min(record.bytes.byteCount, snapLength)
        bytes = record.bytes.extracting(first: captured).withUnsafeBytes { Array($0) }
        originalLength = min(max(record.originalLength, captured), Int(UInt32.max))
        self.timestamp = timestamp
        linkType = record.linkType
        interfaceIndex = record.interfaceIndex
        self.direction = direction
    }

    /// A packet read back, as it is.
    init(readBack record: borrowing PacketRecord) {
        bytes = record.bytes.withUnsafeBytes { Array($0) }
        originalLength = record.originalLength
        timestamp = record.timestamp
        linkType = record.linkType
        interfaceIndex = record.interfaceIndex
        direction = record.direction
    }
}

/// `time` as stored in `resolution` units and read back (rounded down, saturating).
func rounded(_ time: Timestamp, _ resolution: TimestampResolution) -> Timestamp {
    Timestamp(nanoseconds: resolution.nanoseconds(fromUnits: resolution.units(fromNanoseconds: time.nanoseconds)))
}

/// `time` as a classic pcap record stores it: 32-bit seconds, microseconds or nanoseconds.
func pcapRounded(_ time: Timestamp, _ resolution: TimestampResolution) -> Timestamp {
    let seconds = UInt64(UInt32(truncatingIfNeeded: time.seconds))
    var fraction = time.nanoseconds % 1_000_000_000
    if resolution == .microseconds { fraction -= fraction % 1000 }
    return Timestamp(nanoseconds: seconds * 1_000_000_000 + fraction)
}

/// What a packet read from the input is, for comparing the two readers.
struct ReadPacket: Equatable {
    var bytes: [UInt8]
    var originalLength: Int
    var timestamp: Timestamp
    var interfaceIndex: Int
    var fileOffset: Int
    var end: Int

    init(_ record: borrowing PacketRecord, end: Int) {
        bytes = record.bytes.withUnsafeBytes { Array($0) }
        originalLength = record.originalLength
        timestamp = record.timestamp
        interfaceIndex = record.interfaceIndex
        fileOffset = record.fileOffset
        self.end = end
    }
}

/// CaptureStreamReader, fed the input in pieces of 1 to 97 bytes through a 64-byte window,
/// must read what CaptureFileReader reads: the same packets, interfaces, sections and error;
/// and so must its `poll` over a pipe (``checkPoll``).
func checkStream(_ bytes: [UInt8]) {
    var fromFile: [ReadPacket] = [], fileError: CaptureFileError? = nil
    var fileInterfaces: [CaptureInterface] = [], fileSections: [CaptureSection] = []
    do {
        var reader = try CaptureFileReader(bytes: bytes, name: "fuzz-input")
        do {
            while try reader.advance() { fromFile.append(ReadPacket(reader.packet, end: reader.bytesRead)) }
        } catch { fileError = error }
        fileInterfaces = reader.interfaces
        fileSections = reader.sections
    } catch { fileError = error }

    var fromStream: [ReadPacket] = [], streamError: CaptureFileError? = nil
    var streamInterfaces: [CaptureInterface] = [], streamSections: [CaptureSection] = []
    var at = 0
    var state = UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15 | 1
    do {
        var reader = try CaptureStreamReader(name: "fuzz-input", windowBytes: 64) { buffer in
            let n = min(nextPiece(&state), buffer.count, bytes.count - at)
            guard n > 0 else { return 0 }
            bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + at, byteCount: n) }
            at += n
            return n
        }
        do {
            while try reader.advance() { fromStream.append(ReadPacket(reader.packet, end: reader.bytesRead)) }
        } catch {
            streamError = error
            do {
                _ = try reader.advance()
                preconditionFailure("stream: advance() succeeded after an error")
            } catch let again {
                precondition(again == error, "stream: a different error the second time")
            }
        }
        streamInterfaces = reader.interfaces
        streamSections = reader.sections
        precondition(reader.windowCapacity <= max(64, 2 * bytes.count), "stream: window \(reader.windowCapacity) for \(bytes.count) bytes")
    } catch { streamError = error }

    precondition(fromStream == fromFile, "stream: \(fromStream.count) packets, file \(fromFile.count)")
    precondition(streamError == fileError, "stream: \(String(describing: streamError)), file \(String(describing: fileError))")
    precondition(streamInterfaces == fileInterfaces && streamSections == fileSections, "stream: interfaces or sections differ")
    checkPoll(bytes, file: fromFile, fileError: fileError, interfaces: fileInterfaces, sections: fileSections)
}

/// The next piece size, 1 to 97 bytes, from a xorshift generator's `state` (not 0).
func nextPiece(_ state: inout UInt64) -> Int {
    state ^= state << 13; state ^= state >> 7; state ^= state << 17
    return Int(state % 97) + 1
}

/// Writes the input into a pipe in pieces of 1 to 97 bytes, then closes it (a thread of its own).
final class PipeWriter {
    let fd: Int32
    let bytes: [UInt8]

    init(fd: Int32, bytes: [UInt8]) {
        self.fd = fd
        self.bytes = bytes
    }

    func run() {
        var at = 0
        var state = UInt64(bytes.count) &* 0xD6E8_FEB8_6659_FD93 | 1
        while at < bytes.count {
            let n = min(nextPiece(&state), bytes.count - at)
            let wrote = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + at, n) }
            if wrote <= 0 { break }  // the reader closed its end (EPIPE; SIGPIPE is ignored)
            at += wrote
        }
        close(fd)
    }
}

/// CaptureStreamReader as a CaptureSource over a real pipe that another thread writes:
/// `poll` (timeouts of 0 and 1 ms, so records often arrive in parts between calls) must lend
/// what the file reader reads, with the same interfaces, sections and error.
func checkPoll(_ bytes: [UInt8], file: [ReadPacket], fileError: CaptureFileError?,
               interfaces fileInterfaces: [CaptureInterface], sections fileSections: [CaptureSection]) {
    var fds: [Int32] = [0, 0]
    precondition(pipe(&fds) == 0, "pipe")
    _ = signal(SIGPIPE, SIG_IGN)
    var thread = pthread_t()
    let writer = Unmanaged.passRetained(PipeWriter(fd: fds[1], bytes: bytes)).toOpaque()
    precondition(pthread_create(&thread, nil, { context in
        Unmanaged<PipeWriter>.fromOpaque(context!).takeRetainedValue().run()
        return nil
    }, writer) == 0, "pthread_create")
    defer {
        close(fds[0])
        pthread_join(thread, nil)
    }
    var lent: [ReadPacket] = []
    do {
        var reader = try CaptureStreamReader(fileDescriptor: fds[0], name: "fuzz-input", windowBytes: 64)
        var calls = 0
        do {
            while !reader.isFinished {
                calls += 1
                _ = try reader.poll(timeoutMilliseconds: calls & 1 == 0 ? 0 : 1) { lent.append(ReadPacket($0, end: -1)) }
            }
            precondition(fileError == nil, "poll: reached the end, file: \(String(describing: fileError))")
        } catch {
            precondition(error.code == .file && error.message == fileError?.description,
                         "poll: \(error), file: \(String(describing: fileError))")
        }
        precondition(reader.interfaces == fileInterfaces && reader.sections == fileSections, "poll: interfaces or sections differ")
    } catch {
        precondition(error == fileError && file.isEmpty, "poll: opening failed with \(error), file: \(String(describing: fileError))")
    }
    let expected = file.map { packet in
        var p = packet
        p.end = -1
        return p
    }
    precondition(lent == expected, "poll: \(lent.count) packets, file \(file.count)")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    checkStream(bytes)
    guard var reader = try? CaptureFileReader(bytes: bytes, name: "fuzz-input") else { return 0 }

    let decoder = PacketDecoder()
    var decoded = DecodedPacket()
    var configuration = FlowTrackerConfiguration(capacity: 64)
    configuration.nameCapacity = 64
    configuration.fragmentCacheSize = 16
    var tracker = FlowTracker(configuration: configuration, sink: DiscardingFlowSink())

    rewind(pcapNGScratch)
    rewind(pcapScratch)
    guard var writer = try? PcapNGWriter(fileDescriptor: pcapNGScratch, name: "pcapng scratch", comment: "fuzz") else {
        preconditionFailure("cannot start a pcapng file")
    }
    var pcapWriter: PcapWriter? = nil
    var pcapLinkType = LinkType.null
    var pcapSnapLength: UInt32 = 0
    var pcapResolution = TimestampResolution.microseconds
    var writerInterfaces = 0
    var writerFailed = false
    var expected: [WrittenPacket] = []
    var expectedPcap: [WrittenPacket] = []
    var expectedInterfaces: [CaptureInterface] = []
    var packets = 0

    while true {
        let more: Bool
        do {
            more = try reader.advance()
        } catch {
            // Errors are sticky: the next call throws the same one.
            do {
                _ = try reader.advance()
                preconditionFailure("advance() succeeded after an error")
            } catch let again {
                precondition(again == error, "a different error the second time")
            }
            break
        }
        guard more else {
            precondition((try? reader.advance()) == false, "advance() after the end")
            break
        }
        packets += 1
        let record = reader.packet
        let interfaces = reader.interfaces
        precondition(record.interfaceIndex >= 0 && record.interfaceIndex < interfaces.count,
                     "packet on interface \(record.interfaceIndex) of \(interfaces.count)")
        let interface = interfaces[record.interfaceIndex]
        precondition(record.linkType == interface.linkType, "packet link type differs from its interface")
        precondition(reader.bytesRead <= reader.fileSize && record.fileOffset < reader.bytesRead)
        precondition(reader.packetCount == packets)

        // The in-place path podtap-flows takes: decode into the tracker's scratch packet.
        let stop = tracker.process(frame: record.bytes, linkType: record.linkType, decoder: decoder,
                                   timestamp: record.timestamp, wireLength: record.originalLength,
                                   interface: record.interfaceIndex)
        decoded = tracker.lastPacket
        precondition(decoded.stop == stop && decoded.layerCount <= PacketDecoder.maximumNetworkLayers)
        if let dns = decoded.dns { _ = DNSMessage.queryName(in: record.bytes, info: dns) }
        if let tls = decoded.tls {
            _ = TLSClientHello.text(in: record.bytes, offset: tls.serverNameOffset, length: Int(tls.serverNameLength))
            _ = TLSClientHello.text(in: record.bytes, offset: tls.alpnOffset, length: Int(tls.alpnLength))
        }
        let comments = reader.packetComments

        guard !writerFailed else { continue }
        do throws(CaptureFileError) {
            while writerInterfaces < interfaces.count {
                let added = try writer.addInterface(interfaces[writerInterfaces])
                precondition(added == writerInterfaces)
                expectedInterfaces.append(interfaces[writerInterfaces])
                writerInterfaces += 1
            }
            try writer.write(record, comment: comments.first)
            expected.append(WrittenPacket(record, snapLength: Int(interface.snapLength),
                                          timestamp: rounded(record.timestamp, interface.timestampResolution),
                                          direction: record.direction))

            // Classic pcap holds one link type: the first packet's.
            if pcapWriter == nil {
                pcapLinkType = record.linkType
                pcapSnapLength = interface.snapLength == 0 ? 262_144 : interface.snapLength
                pcapResolution = interface.timestampResolution == .nanoseconds ? .nanoseconds : .microseconds
                pcapWriter = try PcapWriter(fileDescriptor: pcapScratch, linkType: pcapLinkType,
                                            snapLength: pcapSnapLength, resolution: pcapResolution)
            }
            if record.linkType == pcapLinkType {
                try pcapWriter!.write(record)
                var written = WrittenPacket(record, snapLength: Int(pcapSnapLength),
                                            timestamp: pcapRounded(record.timestamp, pcapResolution), direction: .unknown)
                written.interfaceIndex = 0
                expectedPcap.append(written)
            }
        } catch {
            // Only a string option too long for pcapng may fail: a name or comment read
            // back with U+FFFD for invalid UTF-8 can grow past 65535 bytes. Stop writing.
            precondition(error.code == .invalidArgument, "writer failed: \(error)")
            writerFailed = true
        }
    }
    tracker.finish()
    let statistics = tracker.currentStatistics
    precondition(statistics.flowsOpened == statistics.flowsClosed && statistics.activeFlows == 0)
    precondition(statistics.packets == UInt64(packets))

    // Interface statistics (ISBs) of the interfaces written.
    let finalInterfaces = reader.interfaces
    var expectedStatistics: [InterfaceStatistics?] = []
    for i in 0..<writerInterfaces {
        guard var s = finalInterfaces[i].statistics, !writerFailed else {
            expectedStatistics.append(nil)
            continue
        }
        do { try writer.writeInterfaceStatistics(interface: i, s) } catch { preconditionFailure("ISB: \(error)") }
        s.timestamp = rounded(s.timestamp, finalInterfaces[i].timestampResolution)
        expectedStatistics.append(s)
    }
    do { try writer.close() } catch { preconditionFailure("pcapng writer: \(error)") }

    // Read the pcapng output back: it must be valid and hold the same packets.
    do {
        var back = try CaptureFileReader(bytes: contents(of: pcapNGScratch), name: "pcapng round trip")
        var index = 0
        while try back.advance() {
            precondition(index < expected.count, "pcapng round trip has more packets")
            precondition(WrittenPacket(readBack: back.packet) == expected[index], "pcapng round trip changed packet \(index)")
            index += 1
        }
        precondition(index == expected.count, "pcapng round trip lost packets: \(index) of \(expected.count)")
        let interfaces = back.interfaces
        precondition(interfaces.count == expectedInterfaces.count, "pcapng round trip interface count")
        for (i, (a, b)) in zip(interfaces, expectedInterfaces).enumerated() {
            precondition(a.linkType == b.linkType && a.snapLength == b.snapLength
                         && a.timestampResolution == b.timestampResolution && a.fcsLength == b.fcsLength,
                         "pcapng round trip changed interface \(i)")
            precondition(a.statistics == expectedStatistics[i], "pcapng round trip changed the statistics of interface \(i)")
        }
    } catch {
        preconditionFailure("cannot read back the pcapng output: \(error)")
    }

    // The same for classic pcap.
    if var p = pcapWriter.take() {
        do { try p.flush() } catch { preconditionFailure("pcap writer: \(error)") }
        _ = consume p
        do {
            var back = try CaptureFileReader(bytes: contents(of: pcapScratch), name: "pcap round trip")
            var index = 0
            while try back.advance() {
                precondition(index < expectedPcap.count, "pcap round trip has more packets")
                precondition(WrittenPacket(readBack: back.packet) == expectedPcap[index], "pcap round trip changed packet \(index)")
                index += 1
            }
            precondition(index == expectedPcap.count, "pcap round trip lost packets: \(index) of \(expectedPcap.count)")
            precondition(back.interfaces.count == 1 && back.interfaces[0].linkType == pcapLinkType
                         && back.interfaces[0].snapLength == pcapSnapLength, "pcap round trip changed the header")
        } catch {
            preconditionFailure("cannot read back the pcap output: \(error)")
        }
    }
    return 0
}

// MARK: - Entry point

/// libFuzzer's driver (in libclang_rt.fuzzer, linked by -sanitize=fuzzer).
@_extern(c, "LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

/// SwiftPM (tools-version >= 5.5) links executables with `--defsym main=FuzzCaptureFile_main`, so
/// libFuzzer's own `main` is never the entry point; this one starts libFuzzer instead.
@_cdecl("FuzzCaptureFile_main")
public func fuzzCaptureFileMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzz)
}
