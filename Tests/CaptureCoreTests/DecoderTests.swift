import CaptureCore
import Testing

@Suite("Packet decoder")
struct DecoderTests {
    static let synOptions: [UInt8] = [2, 4, 0x05, 0xB4, 4, 2, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0, 1, 3, 3, 7]

    @Test("Ethernet / IPv4 / TCP SYN: every field and option")
    func tcpSyn() {
        let frame = FrameBuilder.tcp4("10.244.1.5", 43122, "10.96.0.10", 80, seq: 1000, flags: .syn,
                                      window: 64240, options: Self.synOptions)
        let p = DecodedPacket.decoding(frame)
        #expect(p.stop == nil)
        #expect(p.etherType == 0x0800)
        #expect(p.layerCount == 1)
        let l = p.layers[0]
        #expect(l.ipVersion == 4)
        #expect(l.source == IPAddress("10.244.1.5"))
        #expect(l.destination == IPAddress("10.96.0.10"))
        #expect(l.protocolNumber == 6)
        #expect(l.ipLength == UInt32(frame.count - 14))
        #expect(l.timeToLive == 64)
        #expect(l.hasPorts && l.sourcePort == 43122 && l.destinationPort == 80)
        #expect(l.sequenceNumber == 1000)
        #expect(l.tcpFlags == .syn)
        #expect(l.window == 64240)
        #expect(l.payloadLength == 0)
        #expect(l.tcpOptions.maximumSegmentSize == 1460)
        #expect(l.tcpOptions.sackPermitted)
        #expect(l.tcpOptions.hasTimestamps && l.tcpOptions.timestampValue == 9 && l.tcpOptions.timestampEcho == 0)
        #expect(l.tcpOptions.windowScale == 7)
        #expect(!l.tcpOptions.malformed)
        #expect(l.transportOffset == 34)
    }

    @Test("802.1Q and 802.1ad QinQ tags give the VLAN IDs")
    func vlans() {
        var b = FrameBuilder()
        b.ethernet(type: 0x0800, vlans: [0x2064, 0x00C8], qinq: true)  // PCP 1 VLAN 100 outer, VLAN 200 inner
        let ip = b.ipv4("10.0.0.1", "10.0.0.2", proto: 17)
        b.udp(1000, 2000, payload: [1, 2, 3])
        b.finishIPv4(at: ip)
        let p = DecodedPacket.decoding(b.bytes)
        #expect(p.stop == nil)
        #expect(p.layers[0].vlanID == 200)
        #expect(p.layers[0].outerVLANID == 100)
        #expect(p.layers[0].payloadLength == 3)
    }

    @Test("Linux cooked v1 and v2, raw IPv4/IPv6 and BSD loopback link types")
    func linkTypes() {
        let full = FrameBuilder.udp4("192.0.2.1", 5000, "192.0.2.2", 53,
                                     payload: FrameBuilder.dns(id: 7, response: false, name: "a.b", type: 1))
        let ip = Array(full[14...])
        // SLL: packet type 4 (outgoing), ARPHRD_ETHER, 6-byte address, protocol 0x0800
        let sll: [UInt8] = [0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00] + ip
        let p1 = DecodedPacket.decoding(sll, linkType: .linuxSLL)
        #expect(p1.stop == nil && p1.layerCount == 1 && p1.direction == .outbound)
        // SLL2: protocol, reserved, ifindex 3, ARPHRD 1, packet type 0 (host), addr len 6, address
        let sll2: [UInt8] = [0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0] + ip
        let p2 = DecodedPacket.decoding(sll2, linkType: .linuxSLL2)
        #expect(p2.stop == nil && p2.linkInterfaceIndex == 3 && p2.direction == .inbound)
        #expect(p2.dns?.id == 7)
        for lt in [LinkType.raw, .ipv4] {
            let p = DecodedPacket.decoding(ip, linkType: lt)
            #expect(p.stop == nil && p.layers[0].destinationPort == 53)
        }
        let null: [UInt8] = [2, 0, 0, 0] + ip  // AF_INET, little-endian host
        #expect(DecodedPacket.decoding(null, linkType: .null).layers[0].sourcePort == 5000)
        let nullBigEndian: [UInt8] = [0, 0, 0, 2] + ip  // written on a big-endian host
        #expect(DecodedPacket.decoding(nullBigEndian, linkType: .null).layerCount == 1)
        #expect(DecodedPacket.decoding(ip, linkType: LinkType(rawValue: 147)).stop == DecodeError(.unsupported, .link))
    }

    @Test("IPv6 with hop-by-hop, routing (final destination), destination options, then TCP")
    func ipv6Extensions() {
        var b = FrameBuilder()
        b.ethernet(type: 0x86DD)
        let ip = b.ipv6("fd00:10:244:1::5", "fd00::1", next: 0)
        b.bytes += [43, 0, 1, 4, 0, 0, 0, 0]  // hop-by-hop: next routing, PadN
        // type 0 routing header, 2 addresses, 1 segment left: final destination is the last one
        b.bytes += [60, 4, 0, 1, 0, 0, 0, 0]
        b.bytes += IPAddress.bytes("fd00::2") + IPAddress.bytes("fd00:10:244:2::9")
        b.bytes += [6, 0, 1, 4, 0, 0, 0, 0]  // destination options: next TCP
        b.tcp(40000, 443, seq: 5, flags: [.ack, .psh], payload: [1, 2, 3, 4])
        b.finishIPv6(at: ip)
        let p = DecodedPacket.decoding(b.bytes)
        #expect(p.stop == nil)
        let l = p.layers[0]
        #expect(l.ipVersion == 6 && l.protocolNumber == 6)
        #expect(l.source == IPAddress("fd00:10:244:1::5"))
        #expect(l.destination == IPAddress("fd00:10:244:2::9"))
        #expect(l.destinationPort == 443 && l.payloadLength == 4)
        #expect(l.ipLength == UInt32(b.bytes.count - 14))
    }

    @Test("IPv4 fragments: the first carries ports, later ones are marked and carry none")
    func fragments() {
        var first = FrameBuilder()
        first.ethernet(type: 0x0800)
        let ip = first.ipv4("10.0.0.1", "10.0.0.2", proto: 17, id: 77, moreFragments: true)
        first.udp(1111, 2222, payload: [UInt8](repeating: 0, count: 16))
        first.finishIPv4(at: ip)
        let p1 = DecodedPacket.decoding(first.bytes)
        #expect(p1.layers[0].isFragment && !p1.layers[0].isLaterFragment && p1.layers[0].hasPorts)
        #expect(p1.layers[0].fragmentIdentification == 77)

        var later = FrameBuilder()
        later.ethernet(type: 0x0800)
        let ip2 = later.ipv4("10.0.0.1", "10.0.0.2", proto: 17, id: 77, fragmentOffset: 24)
        later.bytes += [UInt8](repeating: 0, count: 8)
        later.finishIPv4(at: ip2)
        let p2 = DecodedPacket.decoding(later.bytes)
        #expect(p2.stop == nil)
        #expect(p2.layers[0].isLaterFragment && !p2.layers[0].hasPorts)
    }

    @Test("VXLAN on flannel's 8472: outer UDP layer and inner pod-to-pod TCP layer")
    func vxlan() {
        let inner = FrameBuilder.tcp4("10.244.1.146", 37503, "10.244.0.90", 8080, seq: 1, flags: .syn)
        var b = FrameBuilder()
        b.ethernet(type: 0x0800)
        let ip = b.ipv4("10.0.0.11", "10.0.0.10", proto: 17)
        b.udp(47324, 8472, payload: [0x08, 0, 0, 0, 0, 0, 1, 0] + inner)
        b.finishIPv4(at: ip)
        let p = DecodedPacket.decoding(b.bytes)
        #expect(p.stop == nil)
        #expect(p.layerCount == 2)
        #expect(p.layers[0].destinationPort == 8472 && p.layers[0].tunnel == .none)
        #expect(p.layers[1].tunnel == .vxlan && p.layers[1].tunnelID == 1)
        #expect(p.layers[1].source == IPAddress("10.244.1.146") && p.layers[1].destinationPort == 8080)
        #expect(p.innermost.tcpFlags == .syn)
    }

    @Test("Geneve, GRE and IP-in-IP decode the inner packet")
    func otherTunnels() {
        let innerIP = Array(FrameBuilder.udp4("172.16.0.1", 1, "172.16.0.2", 2, payload: [9])[14...])
        // Geneve: ver 0, opt len 1 word, protocol 0x0800, VNI 0x123456, 4 option bytes
        var g = FrameBuilder()
        g.ethernet(type: 0x0800)
        let gip = g.ipv4("10.0.0.1", "10.0.0.2", proto: 17)
        g.udp(5555, 6081, payload: [0x01, 0x00, 0x08, 0x00, 0x12, 0x34, 0x56, 0x00, 1, 2, 3, 4] + innerIP)
        g.finishIPv4(at: gip)
        let pg = DecodedPacket.decoding(g.bytes)
        #expect(pg.stop == nil && pg.layerCount == 2 && pg.layers[1].tunnel == .geneve && pg.layers[1].tunnelID == 0x123456)
        // GRE with key 42, protocol IPv4
        var r = FrameBuilder()
        r.ethernet(type: 0x0800)
        let rip = r.ipv4("10.0.0.1", "10.0.0.2", proto: 47)
        r.bytes += [0x20, 0x00, 0x08, 0x00, 0, 0, 0, 42] + innerIP
        r.finishIPv4(at: rip)
        let pr = DecodedPacket.decoding(r.bytes)
        #expect(pr.stop == nil && pr.layerCount == 2 && pr.layers[1].tunnel == .gre && pr.layers[1].tunnelID == 42)
        #expect(pr.layers[0].protocolNumber == 47 && !pr.layers[0].hasPorts)
        // IP-in-IP
        var i = FrameBuilder()
        i.ethernet(type: 0x0800)
        let iip = i.ipv4("10.0.0.1", "10.0.0.2", proto: 4)
        i.bytes += innerIP
        i.finishIPv4(at: iip)
        let pi = DecodedPacket.decoding(i.bytes)
        #expect(pi.stop == nil && pi.layerCount == 2 && pi.layers[1].tunnel == .ipInIP && pi.layers[1].sourcePort == 1)
    }

    @Test("Nesting deeper than four IP layers stops with too-deep, keeping four")
    func tooDeep() {
        var payload = Array(FrameBuilder.udp4("172.16.0.1", 1, "172.16.0.2", 2, payload: [])[14...])
        for _ in 0..<5 {
            var b = FrameBuilder()
            let ip = b.ipv4("10.0.0.1", "10.0.0.2", proto: 4)
            b.bytes += payload
            b.finishIPv4(at: ip)
            payload = b.bytes
        }
        let p = DecodedPacket.decoding(payload, linkType: .raw)
        #expect(p.layerCount == PacketDecoder.maximumNetworkLayers)
        #expect(p.stop == DecodeError(.tooDeep, .ipv4))
    }

    @Test("ICMP port unreachable quotes the original UDP packet")
    func icmpError() {
        let original = Array(FrameBuilder.udp4("10.244.1.5", 40000, "10.244.2.7", 53, payload: [0, 0, 0, 0])[14...])
        var b = FrameBuilder()
        b.ethernet(type: 0x0800)
        let ip = b.ipv4("10.244.2.7", "10.244.1.5", proto: 1)
        b.bytes += [3, 3, 0, 0, 0, 0, 0, 0] + original.prefix(28)
        b.finishIPv4(at: ip)
        let p = DecodedPacket.decoding(b.bytes)
        #expect(p.stop == nil)
        #expect(p.layers[0].icmpType == 3 && p.layers[0].icmpCode == 3)
        let q = p.quoted
        #expect(q?.source == IPAddress("10.244.1.5") && q?.destination == IPAddress("10.244.2.7"))
        #expect(q?.protocolNumber == 17 && q?.sourcePort == 40000 && q?.destinationPort == 53)
    }

    /// An ICMP error from the router `router` to `node` about `quoted` (IPv4 bytes from the
    /// IP header), ICMP type 3 code 4 ("fragmentation needed").
    static func fragmentationNeeded(from router: String, to node: String, quoting quoted: [UInt8]) -> [UInt8] {
        var b = FrameBuilder()
        b.ethernet(type: 0x0800)
        let ip = b.ipv4(router, node, proto: 1)
        b.bytes += [3, 4, 0, 0, 0, 0, 0x05, 0x78] + quoted
        b.finishIPv4(at: ip)
        return b.bytes
    }

    @Test("An ICMP error about a tunnel packet names the inner packet the quote reaches (VXLAN, Geneve, GRE, IP in IP, IPv6)")
    func icmpErrorQuotingTunnelPackets() throws {
        let inner = FrameBuilder.tcp4("10.244.1.146", 37503, "10.244.0.90", 8080, seq: 1, flags: .ack, payload: [UInt8](repeating: 7, count: 1300), vlans: [30])
        func outer(proto: UInt8, dport: UInt16?, payload: [UInt8]) -> [UInt8] {
            var b = FrameBuilder()
            let ip = b.ipv4("10.0.0.11", "10.0.0.10", proto: proto)
            if let dport { b.udp(47324, dport, payload: payload) } else { b.bytes += payload }
            b.finishIPv4(at: ip)
            return b.bytes
        }
        let innerIP = Array(inner[18...])  // without the Ethernet header and its tag
        let tunnels: [(String, [UInt8], TunnelKind, UInt32, UInt16)] = [
            ("vxlan", outer(proto: 17, dport: 8472, payload: [0x08, 0, 0, 0, 0, 0, 1, 0] + inner), .vxlan, 1, 30),
            ("geneve", outer(proto: 17, dport: 6081, payload: [0x00, 0, 0x65, 0x58, 0x00, 0x00, 0x07, 0x00] + inner), .geneve, 7, 30),
            ("gre", outer(proto: 47, dport: nil, payload: [0x20, 0, 0x08, 0x00, 0, 0, 0, 9] + innerIP), .gre, 9, 0),
            ("ipip", outer(proto: 4, dport: nil, payload: innerIP), .ipInIP, 0, 0),
        ]
        for (name, packet, tunnel, id, vlan) in tunnels {
            // Linux quotes as much as fits in 576 bytes.
            let p = DecodedPacket.decoding(Self.fragmentationNeeded(from: "10.0.0.1", to: "10.0.0.11", quoting: Array(packet.prefix(548))))
            #expect(p.stop == nil, "\(name)")
            let q = try #require(p.quoted, "\(name)")
            #expect(q.source == IPAddress("10.0.0.11") && q.destination == IPAddress("10.0.0.10"), "\(name)")
            let i = try #require(q.inner, "\(name)")
            #expect(i.tunnel == tunnel && i.tunnelID == id && i.vlanID == vlan, "\(name)")
            #expect(i.ipVersion == 4 && i.source == IPAddress("10.244.1.146") && i.destination == IPAddress("10.244.0.90"), "\(name)")
            #expect(i.protocolNumber == 6 && i.sourcePort == 37503 && i.destinationPort == 8080, "\(name)")
            // An old router quotes 8 bytes past the IP header: the outer packet only.
            let short = DecodedPacket.decoding(Self.fragmentationNeeded(from: "10.0.0.1", to: "10.0.0.11", quoting: Array(packet.prefix(28))))
            #expect(short.quoted?.protocolNumber == (tunnel == .vxlan || tunnel == .geneve ? 17 : packet[9]), "\(name)")
            #expect(short.quoted != nil && short.quoted?.inner == nil, "\(name)")
        }
        // Not a tunnel port: no inner packet is looked for.
        let plain = outer(proto: 17, dport: 9999, payload: [0x08, 0, 0, 0, 0, 0, 1, 0] + inner)
        #expect(DecodedPacket.decoding(Self.fragmentationNeeded(from: "10.0.0.1", to: "10.0.0.11", quoting: Array(plain.prefix(548)))).quoted?.inner == nil)

        // ICMPv6 "packet too big" about VXLAN over IPv6 carrying IPv6.
        var inner6 = FrameBuilder()
        inner6.ethernet(type: 0x86DD)
        let i6 = inner6.ipv6("fd00:244:1::5", "fd00:244:2::7", next: 17)
        inner6.udp(5353, 53, payload: [UInt8](repeating: 1, count: 1400))
        inner6.finishIPv6(at: i6)
        var outer6 = FrameBuilder()
        let o6 = outer6.ipv6("2001:db8::11", "2001:db8::10", next: 17)
        outer6.udp(40000, 4789, payload: [0x08, 0, 0, 0, 0, 0, 2, 0] + inner6.bytes)
        outer6.finishIPv6(at: o6)
        var ptb = FrameBuilder()
        ptb.ethernet(type: 0x86DD)
        let e6 = ptb.ipv6("2001:db8::1", "2001:db8::11", next: 58)
        ptb.bytes += [2, 0, 0, 0, 0, 0, 0x05, 0x00] + outer6.bytes.prefix(1280 - 48)
        ptb.finishIPv6(at: e6)
        let p6 = DecodedPacket.decoding(ptb.bytes)
        #expect(p6.stop == nil)
        let q6 = try #require(p6.quoted?.inner)
        #expect(q6.tunnel == .vxlan && q6.tunnelID == 2 && q6.ipVersion == 6)
        #expect(q6.source == IPAddress("fd00:244:1::5") && q6.protocolNumber == 17 && q6.sourcePort == 5353 && q6.destinationPort == 53)
    }

    @Test("An ICMP error quoting a tunnel packet that carries an ICMP error is followed one level only")
    func quotedErrorsAreNotFollowedFurther() throws {
        // Innermost: a VXLAN packet whose inner packet is an ICMP error quoting another VXLAN
        // packet, 40 levels deep; each error quotes the whole level below.
        var packet = Array(FrameBuilder.tcp4("10.244.1.146", 37503, "10.244.0.90", 8080, seq: 1, flags: .syn)[14...])
        for level in 0..<40 {
            var error = FrameBuilder()
            error.ethernet(type: 0x0800)
            let e = error.ipv4("10.244.0.1", "10.244.1.146", proto: 1)
            error.bytes += [3, 4, 0, 0, 0, 0, 0x05, 0x78] + packet
            error.finishIPv4(at: e)
            var b = FrameBuilder()
            let ip = b.ipv4("10.0.0.11", "10.0.0.10", proto: 17)
            b.udp(UInt16(40000 + level), 8472, payload: [0x08, 0, 0, 0, 0, 0, 1, 0] + error.bytes)
            b.finishIPv4(at: ip)
            packet = b.bytes
        }
        let p = DecodedPacket.decoding(Self.fragmentationNeeded(from: "10.0.0.1", to: "10.0.0.11", quoting: packet))
        #expect(p.stop == nil)
        let i = try #require(p.quoted?.inner)
        // The quoted packet's inner packet is itself an error: keyed by the ports it quotes
        // (outer UDP 40038 -> 8472, turned round), and not unwrapped further.
        #expect(i.tunnel == .vxlan && i.protocolNumber == 1 && i.source == IPAddress("10.244.0.1"))
        #expect(i.sourcePort == 8472 && i.destinationPort == 40038)
    }

    @Test("DNS query and response: id, name, type, rcode, answers")
    func dns() {
        let query = FrameBuilder.udp4("10.244.1.5", 40000, "10.96.0.10", 53,
                                      payload: FrameBuilder.dns(id: 0xBEEF, response: false, name: "Kubernetes.Default.svc.cluster.local", type: 28))
        let q = DecodedPacket.decoding(query)
        #expect(q.stop == nil)
        let d = q.dns!
        #expect(d.id == 0xBEEF && !d.isResponse && d.queryType == 28 && d.questionCount == 1)
        #expect(d.nameLength == UInt8("kubernetes.default.svc.cluster.local".count))
        let name = unsafe DNSMessage.queryName(in: query.span.bytes, info: d)
        #expect(name == "kubernetes.default.svc.cluster.local")
        let response = FrameBuilder.udp4("10.96.0.10", 53, "10.244.1.5", 40000,
                                         payload: FrameBuilder.dns(id: 0xBEEF, response: true, name: "kubernetes.default.svc.cluster.local",
                                                                   type: 28, rcode: 3, answers: 0))
        let r = DecodedPacket.decoding(response).dns!
        #expect(r.isResponse && r.responseCode == 3 && r.nameHash == d.nameHash)
    }

    @Test("DNS compression loops and overlong names are malformed, not hangs")
    func dnsHostile() {
        var msg: [UInt8] = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        msg += [0xC0, 12]  // points at itself
        msg += [0, 1, 0, 1]
        let p = DecodedPacket.decoding(FrameBuilder.udp4("10.0.0.1", 999, "10.0.0.2", 53, payload: msg))
        #expect(p.stop == DecodeError(.malformed, .dns))
        #expect(p.layerCount == 1 && p.layers[0].destinationPort == 53)
    }

    @Test("TLS ClientHello: SNI, ALPN, highest supported version (GREASE ignored)")
    func tls() {
        let hello = FrameBuilder.clientHello(sni: "api.payments.svc.cluster.local", alpn: "h2", versions: [0x0A0A, 0x0304, 0x0303])
        let frame = FrameBuilder.tcp4("10.244.1.5", 50000, "10.244.3.3", 443, seq: 1, ack: 1, flags: [.ack, .psh], payload: hello)
        let p = DecodedPacket.decoding(frame)
        #expect(p.stop == nil)
        let t = p.tls!
        #expect(t.recordVersion == 0x0301 && t.legacyVersion == 0x0303 && t.maximumSupportedVersion == 0x0304)
        #expect(!t.truncated)
        #expect(unsafe TLSClientHello.text(in: frame.span.bytes, offset: t.serverNameOffset, length: Int(t.serverNameLength))
                == "api.payments.svc.cluster.local")
        #expect(unsafe TLSClientHello.text(in: frame.span.bytes, offset: t.alpnOffset, length: Int(t.alpnLength)) == "h2")
        // Cut inside the extensions: SNI (first) still found, the rest unknown, marked truncated.
        let cut = Array(frame.prefix(frame.count - 10))
        var b = cut
        b[16] = UInt8((cut.count - 14) >> 8); b[17] = UInt8((cut.count - 14) & 0xFF)  // IPv4 total length matches the cut
        let pc = DecodedPacket.decoding(b)
        #expect(pc.tls?.truncated == true)
        #expect(pc.tls?.serverNameOffset == t.serverNameOffset)
    }

    @Test("Every prefix of every fixture decodes without trapping, and stops when cut")
    func everyPrefix() {
        let fixtures: [[UInt8]] = [
            FrameBuilder.tcp4("10.0.0.1", 1, "10.0.0.2", 2, seq: 0, flags: .syn, options: Self.synOptions, vlans: [5]),
            FrameBuilder.udp4("10.0.0.1", 1, "10.0.0.2", 53, payload: FrameBuilder.dns(id: 1, response: false, name: "x.y.z", type: 1)),
            FrameBuilder.tcp4("10.0.0.1", 1, "10.0.0.2", 443, seq: 0, flags: .ack,
                              payload: FrameBuilder.clientHello(sni: "s.example", alpn: "http/1.1", versions: [0x0304])),
        ]
        for frame in fixtures {
            let full = DecodedPacket.decoding(frame)
            #expect(full.stop == nil)
            for n in 0..<frame.count {
                let p = DecodedPacket.decoding(Array(frame.prefix(n)))
                #expect(p.layerCount <= full.layerCount)
                // A cut Ethernet or IP header must say so; a cut payload may still decode.
                if n < 34 { #expect(p.stop != nil, "prefix \(n) decoded without a stop") }
            }
        }
    }

    @Test("Decode statistics count stops by layer and reason")
    func statistics() {
        var s = DecodeStatistics()
        s.record(DecodeError(.truncated, .tcp))
        s.record(DecodeError(.truncated, .tcp))
        s.record(DecodeError(.unsupported, .ethernet))
        #expect(s[.tcp, .truncated] == 2 && s[.ethernet, .unsupported] == 1 && s.total == 3)
        #expect(s.nonZero.count == 2)
    }

    @Test("IP address text round trip (RFC 5952)")
    func addresses() {
        for text in ["10.244.1.5", "0.0.0.0", "255.255.255.255", "fd00:10:244:1::5", "::1", "::", "2001:db8::1:0:0:1", "fe80::1"] {
            #expect(IPAddress(text)?.description == text)
        }
        #expect(IPAddress("::ffff:10.0.0.1")?.isIPv4 == true)
        #expect(IPAddress("1.2.3") == nil && IPAddress("1:2:3") == nil && IPAddress("256.1.1.1") == nil)
        #expect(IPAddress("10.0.0.1")! < IPAddress("10.0.0.2")!)
    }
}

extension IPAddress {
    static func bytes(_ s: String) -> [UInt8] {
        let a = IPAddress(s)!
        var out: [UInt8] = []
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: a.high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: a.low >> UInt64(shift))) }
        return out
    }
}
