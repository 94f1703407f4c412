// libFuzzer harness: PacketDecoder, then FlowTracker, DNS and TLS name extraction.
//
// Input: byte 0 selects the link type (`linkTypes[byte % count]`) and, with `byte / count`,
// the decoder's options (0, as in every seed, is the default configuration); the rest is
// one frame.
// Built with -sanitize=fuzzer(,address) and -parse-as-library: libFuzzer provides `main`.
import CaptureCore

/// Every link type PodTap decodes, and one it does not (LINKTYPE_USER0).
let linkTypes: [LinkType] = [
    .ethernet, .raw, .linuxSLL, .linuxSLL2, .ipv4, .ipv6, .null, .loop, LinkType(rawValue: 147),
]

/// Counts events and checks that no flow is closed twice or updated after it closed.
struct CheckingSink: FlowSink {
    var opened = 0
    var closed = 0
    mutating func receive(_ event: FlowEvent, _ flow: FlowRecord) {
        switch event {
        case .opened: opened += 1
        case .updated: precondition(opened > closed, "update with no open flow")
        case .closed: closed += 1
        }
        precondition(closed <= opened, "more flows closed than opened")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let linkType = linkTypes[Int(data[0]) % linkTypes.count]
    let frame = UnsafeRawBufferPointer(start: data + 1, count: size - 1).bytes
    run(frame, linkType: linkType, decoder: decoder(variant: Int(data[0]) / linkTypes.count))
    return 0
}

/// The default decoder for variant 0; other variants turn off DNS or TLS, disable Geneve or
/// move the tunnel ports onto ports other decoders claim.
func decoder(variant: Int) -> PacketDecoder {
    var decoder = PacketDecoder()
    if variant & 1 != 0 { decoder.decodesDNS = false }
    if variant & 2 != 0 { decoder.decodesTLS = false }
    if variant & 4 != 0 { decoder.genevePort = 0 }
    if variant & 8 != 0 {
        decoder.vxlanPorts = (53, 443)
        decoder.genevePort = variant & 4 != 0 ? 0 : 4789
    }
    return decoder
}

func run(_ frame: RawSpan, linkType: LinkType, decoder: PacketDecoder) {
    var packet = DecodedPacket()
    decoder.decode(frame, linkType: linkType, into: &packet)
    checkInvariants(packet, frame: frame, linkType: linkType)
    if !decoder.decodesDNS { precondition(packet.dns == nil, "DNS decoded with decodesDNS off") }
    if !decoder.decodesTLS { precondition(packet.tls == nil, "TLS decoded with decodesTLS off") }
    if decoder.genevePort == 0 {
        for i in 0..<packet.layerCount { precondition(packet.layers[i].tunnel != .geneve, "Geneve decoded with port 0") }
    }

    // Decoding again into a used packet must give the same result (decode resets everything).
    var again = DecodedPacket()
    again.layerCount = 3
    again.dns = DNSInfo()
    again.tls = TLSClientHelloInfo()
    again.quoted = QuotedPacket()
    decoder.decode(frame, linkType: linkType, into: &again)
    precondition(again.layerCount == packet.layerCount && again.dns == packet.dns && again.tls == packet.tls
                 && again.quoted == packet.quoted && again.stop == packet.stop, "decode is not a pure function of the frame")

    // A tiny table: the layers of one frame (up to 4 flows) overflow it, so eviction runs;
    // 64 packets trigger a sweep; the time jumps make flows time out.
    var configuration = FlowTrackerConfiguration(capacity: 2)
    configuration.nameCapacity = 4
    configuration.fragmentCacheSize = 16
    var tracker = FlowTracker(configuration: configuration, sink: CheckingSink())
    var time: UInt64 = 1_000_000_000
    for i in 0..<65 {
        tracker.process(packet, frame: frame, timestamp: Timestamp(nanoseconds: time), wireLength: frame.byteCount,
                        interface: i & 3)
        time &+= i == 32 ? 400_000_000_000 : 1_000_000
    }
    tracker.expire(at: Timestamp(nanoseconds: time &+ 1_000_000_000_000))
    precondition(tracker.activeFlows <= 2, "more active flows than capacity")
    tracker.finish()
    let statistics = tracker.currentStatistics
    precondition(statistics.activeFlows == 0, "flows left after finish()")
    precondition(statistics.flowsOpened == statistics.flowsClosed, "opened \(statistics.flowsOpened) != closed \(statistics.flowsClosed)")
    precondition(tracker.sink.opened == Int(statistics.flowsOpened) && tracker.sink.closed == Int(statistics.flowsClosed),
                 "sink events disagree with statistics")
    precondition(statistics.packets == 65, "packets not counted")
}

func checkInvariants(_ p: DecodedPacket, frame: RawSpan, linkType: LinkType) {
    let count = frame.byteCount
    precondition(p.linkType == linkType)
    precondition(p.layerCount >= 0 && p.layerCount <= PacketDecoder.maximumNetworkLayers,
                 "layerCount \(p.layerCount) out of range")
    var previousIP = -1
    for i in 0..<p.layerCount {
        let l = p.layers[i]
        precondition(l.ipVersion == 4 || l.ipVersion == 6, "layer \(i): ip version \(l.ipVersion)")
        let ip = Int(l.ipOffset)
        precondition(ip > previousIP && ip < count, "layer \(i): ip offset \(ip) (previous \(previousIP), frame \(count))")
        previousIP = ip
        let transport = Int(l.transportOffset)
        precondition(transport == -1 || (transport >= ip && transport <= count),
                     "layer \(i): transport offset \(transport) (ip \(ip), frame \(count))")
        if l.hasPorts { precondition(transport >= 0, "layer \(i): ports without a transport header") }
        if i > 0 { precondition(l.tunnel != .none, "layer \(i): inner layer without a tunnel kind") }
        if l.isLaterFragment { precondition(l.isFragment) }
    }
    if p.stop == nil && p.layerCount == 0 {
        // Nothing decoded and no reason: impossible, every link type leads to IP or a stop.
        preconditionFailure("no layer and no stop reason")
    }
    if let q = p.quoted {
        precondition(p.layerCount > 0, "quoted packet without a carrier")
        let proto = p.innermost.protocolNumber
        precondition(proto == 1 || proto == 58, "quoted packet in protocol \(proto)")
        precondition(q.ipVersion == 4 || q.ipVersion == 6)
    }
    if let dns = p.dns {
        precondition(p.layerCount > 0, "DNS without a layer")
        let proto = p.innermost.protocolNumber
        precondition(proto == 6 || proto == 17, "DNS in protocol \(proto)")
        let message = Int(dns.messageOffset)
        precondition(message >= 0 && message + DNSMessage.headerLength <= count, "DNS message offset \(message)")
        if dns.nameOffset >= 0 {
            precondition(Int(dns.nameOffset) == message + DNSMessage.headerLength && Int(dns.nameOffset) < count,
                         "DNS name offset \(dns.nameOffset)")
            precondition(dns.questionCount > 0)
            precondition((dns.nameHash == 0) == (dns.nameLength == 0), "name hash/length mismatch")
            // The decoder walked the name within the frame: the text must be there too.
            guard let name = DNSMessage.queryName(in: frame, info: dns) else {
                preconditionFailure("decoded DNS name has no text")
            }
            precondition(name.unicodeScalars.count <= Int(dns.nameLength), "name longer than decoded length")
            precondition(Int(dns.nameLength) <= 255)
            if name.utf8.allSatisfy({ $0 < 0x80 }) {
                precondition(name.utf8.count == Int(dns.nameLength), "name \(name.utf8.count) != length \(dns.nameLength)")
            }
        } else {
            precondition(dns.nameLength == 0 && dns.nameHash == 0)
        }
    }
    if let tls = p.tls {
        precondition(p.layerCount > 0 && p.innermost.protocolNumber == 6, "TLS outside TCP")
        if tls.serverNameOffset >= 0 {
            precondition(tls.serverNameLength > 0 && Int(tls.serverNameOffset) + Int(tls.serverNameLength) <= count,
                         "SNI \(tls.serverNameOffset)+\(tls.serverNameLength) outside the frame (\(count))")
            let text = TLSClientHello.text(in: frame, offset: tls.serverNameOffset, length: Int(tls.serverNameLength))
            precondition(text != nil, "SNI has no text")
        } else {
            precondition(tls.serverNameLength == 0 && tls.serverNameHash == 0)
        }
        if tls.alpnOffset >= 0 {
            precondition(tls.alpnLength > 0 && Int(tls.alpnOffset) + Int(tls.alpnLength) <= count,
                         "ALPN \(tls.alpnOffset)+\(tls.alpnLength) outside the frame (\(count))")
            precondition(TLSClientHello.text(in: frame, offset: tls.alpnOffset, length: Int(tls.alpnLength)) != nil)
        } else {
            precondition(tls.alpnLength == 0 && tls.alpnHash == 0)
        }
    }
    // Any offset, any length: the accessors must not trap (they return nil outside the frame).
    _ = TLSClientHello.text(in: frame, offset: Int32(truncatingIfNeeded: count &- 3), length: 7)
    _ = TLSClientHello.text(in: frame, offset: -1, length: 1)
}

// MARK: - Entry point

/// libFuzzer's driver (in libclang_rt.fuzzer, linked by -sanitize=fuzzer).
@_extern(c, "LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

/// SwiftPM (tools-version >= 5.5) links executables with `--defsym main=FuzzDecoder_main`, so
/// libFuzzer's own `main` is never the entry point; this one starts libFuzzer instead.
@_cdecl("FuzzDecoder_main")
public func fuzzDecoderMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzz)
}
