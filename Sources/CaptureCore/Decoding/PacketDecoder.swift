/// Decodes frames into ``DecodedPacket`` values: link layer, tags, up to four nested IP layers
/// (VXLAN, Geneve, GRE, IP-in-IP), transport headers, and light L7 (DNS, TLS ClientHello).
///
/// Decoding never traps, never allocates and always terminates: every length is checked
/// before it is used, loops are bounded (tags, extension headers, nesting), and a malformed
/// or truncated header ends decoding with ``DecodedPacket/stop`` set, keeping what came before.
public struct PacketDecoder: Sendable {
    /// The most nested IP layers decoded; deeper ones stop with ``DecodeError/Reason/tooDeep``.
    @inlinable public static var maximumNetworkLayers: Int { 4 }
    @usableFromInline static let maximumTags = 4

    /// UDP destination ports decoded as VXLAN: IANA 4789 and Linux/flannel 8472 by default.
    public var vxlanPorts: (UInt16, UInt16) = (VXLANHeader.ianaPort, VXLANHeader.linuxDefaultPort)
    /// UDP destination port decoded as Geneve, 6081 by default (0 disables).
    public var genevePort: UInt16 = GeneveHeader.port
    /// Decode DNS on UDP/TCP port 53 and mDNS on UDP 5353.
    public var decodesDNS = true
    /// Look for a TLS ClientHello at the start of TCP payloads.
    public var decodesTLS = true
    /// Parse TCP options on every segment; by default only on SYN segments, which carry the
    /// negotiated ones (MSS, window scale, SACK permitted). Timestamps on data segments are
    /// then left unread, which saves a loop per packet.
    public var decodesTCPOptionsOnEverySegment = false

    public init() {}

    /// Decodes `frame` of `linkType` into `packet`, replacing what it held.
    @inlinable
    public func decode(_ frame: RawSpan, linkType: LinkType, into packet: inout DecodedPacket) {
        packet.linkType = linkType
        packet.direction = .unknown
        packet.linkInterfaceIndex = 0
        packet.etherType = 0
        packet.layerCount = 0
        packet.stop = nil
        packet.quoted = nil
        packet.dns = nil
        packet.tls = nil
        do throws(DecodeError) {
            try decodeFrame(frame, linkType: linkType, into: &packet)
        } catch {
            packet.stop = error
        }
    }

    @usableFromInline enum Next {
        case ethernet
        case etherType(UInt16)
        case ipByVersion
        case ipv4
        case ipv6
        case done
    }

    /// Context carried from an encapsulation to the layer inside it.
    @usableFromInline struct Context {
        @usableFromInline var offset: Int
        @usableFromInline var end: Int
        @usableFromInline var vlanID: UInt16 = 0
        @usableFromInline var outerVLANID: UInt16 = 0
        @usableFromInline var tags = 0
        @usableFromInline var tunnel = TunnelKind.none
        @usableFromInline var tunnelID: UInt32 = 0
        @inlinable init(offset: Int, end: Int) {
            self.offset = offset
            self.end = end
        }

        /// Enters an encapsulation that carries a new link-layer frame (or a protocol type):
        /// the inner frame's VLAN tags start afresh.
        @inlinable mutating func enterTunnel(_ kind: TunnelKind, id: UInt32, at offset: Int) {
            self.offset = offset
            tunnel = kind
            tunnelID = id
            vlanID = 0
            outerVLANID = 0
            tags = 0
        }
    }

    @inlinable
    func decodeFrame(_ frame: RawSpan, linkType: LinkType, into p: inout DecodedPacket) throws(DecodeError) {
        var c = Context(offset: 0, end: frame.byteCount)
        var next: Next
        switch linkType {
        case .ethernet:
            next = .ethernet
        case .linuxSLL:
            let h = try LinuxSLLHeader(validating: frame)
            p.direction = h.packetType == 4 ? .outbound : .inbound
            c.offset = LinuxSLLHeader.length
            next = .etherType(h.protocolType)
            p.etherType = h.protocolType
        case .linuxSLL2:
            let h = try LinuxSLL2Header(validating: frame)
            p.direction = h.packetType == 4 ? .outbound : .inbound
            p.linkInterfaceIndex = h.interfaceIndex
            c.offset = LinuxSLL2Header.length
            next = .etherType(h.protocolType)
            p.etherType = h.protocolType
        case .null, .loop:
            guard frame.byteCount >= 4 else { throw DecodeError(.truncated, .null) }
            var family = linkType == .loop ? frame.bigEndianUInt32(at: 0) : frame.littleEndianUInt32(at: 0)
            if family > 0xFFFF { family = family.byteSwapped }  // written on a host of the other byte order
            c.offset = 4
            switch family {
            case 2: next = .ipv4
            case 10, 24, 28, 30: next = .ipv6  // Linux, NetBSD/OpenBSD, FreeBSD, Darwin
            default: throw DecodeError(.unsupported, .null)
            }
        case .raw: next = .ipByVersion
        case .ipv4: next = .ipv4
        case .ipv6: next = .ipv6
        default: throw DecodeError(.unsupported, .link)
        }

        while true {
            switch next {
            case .done:
                return
            case .ethernet:
                let e = try EthernetHeader(validating: frame.extracting(c.offset..<c.end))
                c.offset &+= EthernetHeader.length
                if p.layerCount == 0 { p.etherType = e.etherType }
                next = .etherType(e.etherType)
            case .etherType(let type):
                next = try dispatch(etherType: type, frame, &c, &p)
            case .ipByVersion:
                guard c.offset < c.end else { throw DecodeError(.truncated, .ipv4) }
                switch frame.uint8(at: c.offset) >> 4 {
                case 4: next = .ipv4
                case 6: next = .ipv6
                default: throw DecodeError(.malformed, .ipv4)
                }
            case .ipv4, .ipv6:
                guard p.layerCount < Self.maximumNetworkLayers else {
                    throw DecodeError(.tooDeep, next.isIPv4 ? .ipv4 : .ipv6)
                }
                var layer = NetworkLayer()
                layer.vlanID = c.vlanID
                layer.outerVLANID = c.outerVLANID
                layer.tunnel = c.tunnel
                layer.tunnelID = c.tunnelID
                var inner = c
                var failure: DecodeError? = nil
                do throws(DecodeError) {
                    next = try next.isIPv4
                        ? decodeIPv4(frame, &inner, &layer, &p) : decodeIPv6(frame, &inner, &layer, &p)
                } catch {
                    failure = error
                }
                if layer.ipVersion != 0 {
                    p.layers[p.layerCount] = layer
                    p.layerCount &+= 1
                }
                if let failure { throw failure }
                c = inner
            }
        }
    }

    @inlinable
    func dispatch(etherType: UInt16, _ frame: RawSpan, _ c: inout Context, _ p: inout DecodedPacket) throws(DecodeError) -> Next {
        var type = etherType
        while type == EtherType.vlan || type == EtherType.qinq || type == EtherType.qinqLegacy {
            guard c.tags < Self.maximumTags else { throw DecodeError(.tooDeep, .vlan) }
            let tag = try VLANTag(validating: frame.extracting(c.offset..<c.end))
            if c.tags > 0 { c.outerVLANID = c.outerVLANID == 0 ? c.vlanID : c.outerVLANID }
            c.vlanID = tag.vlanID
            c.tags &+= 1
            c.offset &+= VLANTag.length
            type = tag.etherType
        }
        switch type {
        case EtherType.ipv4: return .ipv4
        case EtherType.ipv6: return .ipv6
        case EtherType.transparentEthernetBridging: return .ethernet
        case EtherType.mplsUnicast, EtherType.mplsMulticast:
            var labels = 0
            while true {
                guard c.offset &+ 4 <= c.end else { throw DecodeError(.truncated, .ethernet) }
                let entry = frame.bigEndianUInt32(at: c.offset)
                c.offset &+= 4
                labels &+= 1
                if entry & 0x100 != 0 { break }  // bottom of stack
                guard labels < 16 else { throw DecodeError(.tooDeep, .ethernet) }
            }
            return .ipByVersion
        default:
            throw DecodeError(.unsupported, .ethernet)
        }
    }

    @inlinable
    func decodeIPv4(_ frame: RawSpan, _ c: inout Context, _ l: inout NetworkLayer, _ p: inout DecodedPacket) throws(DecodeError) -> Next {
        let h = try IPv4Header(validating: frame.extracting(c.offset..<c.end))
        l.ipVersion = 4
        l.source = IPAddress(ipv4: h.sourceAddress)
        l.destination = IPAddress(ipv4: h.destinationAddress)
        l.protocolNumber = h.protocolNumber
        l.timeToLive = h.timeToLive
        l.ipLength = UInt32(h.totalLength)
        l.ipOffset = Int32(truncatingIfNeeded: c.offset)
        let claimedEnd = c.offset &+ Int(h.totalLength)
        c.end = min(c.end, claimedEnd)
        c.offset &+= h.headerLength
        if h.moreFragments || h.fragmentOffset != 0 {
            l.isFragment = true
            l.fragmentIdentification = UInt32(h.identification)
            if h.fragmentOffset != 0 {
                l.isLaterFragment = true
                return .done
            }
        }
        return try decodeTransport(h.protocolNumber, frame, &c, claimedEnd: claimedEnd, &l, &p)
    }

    @inlinable
    func decodeIPv6(_ frame: RawSpan, _ c: inout Context, _ l: inout NetworkLayer, _ p: inout DecodedPacket) throws(DecodeError) -> Next {
        let h = try IPv6Header(validating: frame.extracting(c.offset..<c.end))
        l.ipVersion = 6
        l.source = h.sourceAddress
        l.destination = h.destinationAddress
        l.timeToLive = h.hopLimit
        l.ipOffset = Int32(truncatingIfNeeded: c.offset)
        let payloadLength = Int(h.payloadLength)
        l.ipLength = UInt32(IPv6Header.length &+ payloadLength)
        let claimedEnd = payloadLength == 0 ? c.end : c.offset &+ IPv6Header.length &+ payloadLength
        c.end = min(c.end, claimedEnd)
        c.offset &+= IPv6Header.length
        var next = h.nextHeader
        l.protocolNumber = next
        // Each extension header is at least 8 bytes and the offset only grows: the walk is
        // bounded by the packet's length, however many headers are chained.
        while IPv6ExtensionHeader.isExtension(next) {
            let e = try IPv6ExtensionHeader(validating: frame.extracting(c.offset..<c.end), type: next)
            if next == IPProtocol.fragment && (e.fragmentOffset != 0 || e.moreFragments) {  // not atomic (RFC 6946)
                l.isFragment = true
                l.fragmentIdentification = e.fragmentIdentification
                if e.fragmentOffset != 0 {
                    l.isLaterFragment = true
                    l.protocolNumber = e.nextHeader
                    return .done
                }
            } else if next == IPProtocol.routing, e.segmentsLeft > 0, let final = e.finalDestination {
                // The flow's end is the final destination, as in the transport pseudo-header (RFC 8200 §8.1).
                l.destination = final
            }
            c.offset &+= e.length
            next = e.nextHeader
            l.protocolNumber = next
        }
        if next == IPProtocol.noNextHeader { return .done }
        return try decodeTransport(next, frame, &c, claimedEnd: claimedEnd, &l, &p)
    }

    @inlinable
    func decodeTransport(
        _ proto: UInt8, _ frame: RawSpan, _ c: inout Context, claimedEnd: Int,
        _ l: inout NetworkLayer, _ p: inout DecodedPacket
    ) throws(DecodeError) -> Next {
        l.transportOffset = Int32(truncatingIfNeeded: c.offset)
        switch proto {
        case IPProtocol.tcp:
            let t = try TCPHeader(validating: frame.extracting(c.offset..<c.end))
            l.hasPorts = true
            l.sourcePort = t.sourcePort
            l.destinationPort = t.destinationPort
            l.sequenceNumber = t.sequenceNumber
            l.acknowledgmentNumber = t.acknowledgmentNumber
            l.tcpFlags = t.flags
            l.window = t.window
            if t.headerLength > TCPHeader.minimumLength && (decodesTCPOptionsOnEverySegment || l.tcpFlags.contains(.syn)) {
                l.tcpOptions = t.options
            }
            let payloadStart = c.offset &+ t.headerLength
            l.payloadLength = UInt32(max(0, claimedEnd &- payloadStart))
            if payloadStart < c.end {
                if decodesTLS && frame.uint8(at: payloadStart) == 22 {
                    p.tls = try TLSClientHello.parse(frame, from: payloadStart, to: c.end)
                } else if decodesDNS && (t.sourcePort == 53 || t.destinationPort == 53) && payloadStart &+ 2 < c.end {
                    // DNS over TCP: a 2-byte length, then the message (the first one in the segment).
                    p.dns = try DNSMessage.parse(frame, from: payloadStart &+ 2, to: c.end)
                }
            }
            return .done
        case IPProtocol.udp:
            let u = try UDPHeader(validating: frame.extracting(c.offset..<c.end))
            l.hasPorts = true
            l.sourcePort = u.sourcePort
            l.destinationPort = u.destinationPort
            let payloadStart = c.offset &+ UDPHeader.length
            l.payloadLength = UInt32(max(0, claimedEnd &- payloadStart))
            let dport = u.destinationPort
            if unwrapsVXLAN(onPort: dport) {
                let v = try VXLANHeader(validating: frame.extracting(payloadStart..<c.end))
                c.enterTunnel(.vxlan, id: v.networkIdentifier, at: payloadStart &+ VXLANHeader.length)
                return .ethernet
            }
            if unwrapsGeneve(onPort: dport) {
                let g = try GeneveHeader(validating: frame.extracting(payloadStart..<c.end))
                c.enterTunnel(.geneve, id: g.networkIdentifier, at: payloadStart &+ g.headerLength)
                if g.isControl { return .done }
                return .etherType(g.protocolType)
            }
            if decodesDNS && (dport == 53 || u.sourcePort == 53 || dport == 5353 || u.sourcePort == 5353) {
                p.dns = try DNSMessage.parse(frame, from: payloadStart, to: c.end)
            }
            return .done
        case IPProtocol.icmp, IPProtocol.icmpv6:
            let v6 = proto == IPProtocol.icmpv6
            let i = try ICMPHeader(validating: frame.extracting(c.offset..<c.end), layer: v6 ? .icmpv6 : .icmp)
            l.icmpType = i.type
            l.icmpCode = i.code
            if ICMPHeader.isEcho(i.type, v6: v6) {
                // Echo request and reply share the identifier: use it as both ports so both
                // directions land in one flow.
                l.hasPorts = true
                l.sourcePort = i.identifier
                l.destinationPort = i.identifier
            } else if v6 ? ICMPHeader.isIPv6Error(i.type) : ICMPHeader.isIPv4Error(i.type) {
                var q = try quotedPacket(frame, from: c.offset &+ ICMPHeader.length, to: c.end, v6: v6)
                if !p.isQuote && quotesTunnelPacket(q) {
                    quotedTunnelInner(frame.extracting((c.offset &+ ICMPHeader.length)..<c.end), into: &q)
                }
                p.quoted = q
                // An error takes the ports of the packet it quotes, turned round (it travels
                // back towards that packet's source): one ICMP flow per flow reported on, which
                // a flow-hash fanout keeps on the reported flow's thread.
                if q.hasPorts {
                    l.hasPorts = true
                    l.sourcePort = q.destinationPort
                    l.destinationPort = q.sourcePort
                }
            }
            return .done
        case IPProtocol.sctp:
            let s = try SCTPHeader(validating: frame.extracting(c.offset..<c.end))
            l.hasPorts = true
            l.sourcePort = s.sourcePort
            l.destinationPort = s.destinationPort
            return .done
        case IPProtocol.gre:
            let g = try GREHeader(validating: frame.extracting(c.offset..<c.end))
            c.enterTunnel(.gre, id: g.key, at: c.offset &+ g.headerLength)
            if g.protocolType == 0x880B {  // PPP (PPTP): optional FF 03, then a 1- or 2-byte protocol
                guard c.offset < c.end else { return .done }  // acknowledgment only
                if c.offset &+ 2 <= c.end && frame.bigEndianUInt16(at: c.offset) == 0xFF03 { c.offset &+= 2 }
                guard c.offset < c.end else { throw DecodeError(.truncated, .gre) }
                var pppProtocol = UInt16(frame.uint8(at: c.offset))
                if pppProtocol & 1 == 0 {
                    guard c.offset &+ 2 <= c.end else { throw DecodeError(.truncated, .gre) }
                    pppProtocol = frame.bigEndianUInt16(at: c.offset)
                    c.offset &+= 2
                } else {
                    c.offset &+= 1
                }
                switch pppProtocol {
                case 0x21: return .ipv4
                case 0x57: return .ipv6
                default: throw DecodeError(.unsupported, .gre)
                }
            }
            return .etherType(g.protocolType)
        case IPProtocol.ipip:
            c.tunnel = .ipInIP
            c.tunnelID = 0
            return .ipv4
        case IPProtocol.ipv6:
            c.tunnel = .ipInIP
            c.tunnelID = 0
            return .ipv6
        default:
            l.transportOffset = -1
            return .done
        }
    }

    /// Reads the IP header and first 8 transport bytes an ICMP error quotes (RFC 792, RFC 4443).
    @inlinable
    func quotedPacket(_ frame: RawSpan, from offset: Int, to end: Int, v6: Bool) throws(DecodeError) -> QuotedPacket {
        let layer: DecodeError.Layer = v6 ? .icmpv6 : .icmp
        var q = QuotedPacket()
        var o = offset
        var proto: UInt8
        guard o < end else { throw DecodeError(.truncated, layer) }
        let version = frame.uint8(at: o) >> 4
        if version == 4 {
            guard end &- o >= IPv4Header.minimumLength else { throw DecodeError(.truncated, layer) }
            let ihl = Int(frame.uint8(at: o) & 0x0F) &* 4
            guard ihl >= 20 else { throw DecodeError(.malformed, layer) }
            q.ipVersion = 4
            q.source = IPAddress(ipv4: frame.bigEndianUInt32(at: o &+ 12))
            q.destination = IPAddress(ipv4: frame.bigEndianUInt32(at: o &+ 16))
            proto = frame.uint8(at: o &+ 9)
            let laterFragment = frame.bigEndianUInt16(at: o &+ 6) & 0x1FFF != 0
            q.protocolNumber = proto
            o &+= ihl
            if laterFragment { return q }
        } else if version == 6 {
            guard end &- o >= IPv6Header.length else { throw DecodeError(.truncated, layer) }
            q.ipVersion = 6
            q.source = IPAddress(high: frame.bigEndianUInt64(at: o &+ 8), low: frame.bigEndianUInt64(at: o &+ 16))
            q.destination = IPAddress(high: frame.bigEndianUInt64(at: o &+ 24), low: frame.bigEndianUInt64(at: o &+ 32))
            proto = frame.uint8(at: o &+ 6)
            o &+= IPv6Header.length
            while IPv6ExtensionHeader.isExtension(proto) {
                guard o &+ 8 <= end else { q.protocolNumber = proto; return q }
                let e = try IPv6ExtensionHeader(validating: frame.extracting(o..<end), type: proto)
                if proto == IPProtocol.fragment && e.fragmentOffset != 0 {
                    q.protocolNumber = e.nextHeader
                    return q
                }
                o &+= e.length
                proto = e.nextHeader
            }
            q.protocolNumber = proto
        } else {
            throw DecodeError(.malformed, layer)
        }
        if (proto == IPProtocol.tcp || proto == IPProtocol.udp || proto == IPProtocol.sctp) && o &+ 4 <= end {
            q.hasPorts = true
            q.sourcePort = frame.bigEndianUInt16(at: o)
            q.destinationPort = frame.bigEndianUInt16(at: o &+ 2)
        }
        return q
    }
}

extension PacketDecoder {
    /// Whether UDP to destination `port` is decoded as VXLAN.
    @inlinable func unwrapsVXLAN(onPort port: UInt16) -> Bool { port == vxlanPorts.0 || port == vxlanPorts.1 }
    /// Whether UDP to destination `port` is decoded as Geneve.
    @inlinable func unwrapsGeneve(onPort port: UInt16) -> Bool { port == genevePort && genevePort != 0 }

    /// Whether a quoted packet is one this decoder would unwrap as a tunnel.
    @inlinable
    func quotesTunnelPacket(_ q: QuotedPacket) -> Bool {
        switch q.protocolNumber {
        case IPProtocol.ipip, IPProtocol.ipv6, IPProtocol.gre:
            return true
        case IPProtocol.udp:
            let port = q.destinationPort
            return q.hasPorts && (unwrapsVXLAN(onPort: port) || unwrapsGeneve(onPort: port))
        default:
            return false
        }
    }

    /// Decodes a quoted tunnel packet (the bytes an ICMP error quotes, from its IP header) as
    /// a packet of its own, and keeps its innermost layer in `q.inner` when that layer is
    /// inside a tunnel. A quote is usually cut short (576 bytes in all for ICMP, 1,280 for
    /// ICMPv6, or only 8 bytes past the IP header from old routers): whatever was decoded
    /// before the cut counts, as it does for a packet cut by the snap length. Errors quoted
    /// in there are not followed further.
    @usableFromInline @inline(never)
    func quotedTunnelInner(_ quote: RawSpan, into q: inout QuotedPacket) {
        var scratch = DecodedPacket()
        scratch.isQuote = true
        do throws(DecodeError) {
            try decodeFrame(quote, linkType: .raw, into: &scratch)
        } catch {}
        guard scratch.layerCount >= 2 else { return }
        let l = scratch.layers[scratch.layerCount &- 1]
        guard l.tunnel != .none else { return }
        var inner = QuotedPacket.Inner()
        inner.tunnel = l.tunnel
        inner.tunnelID = l.tunnelID
        inner.vlanID = l.vlanID
        inner.ipVersion = l.ipVersion
        inner.source = l.source
        inner.destination = l.destination
        inner.protocolNumber = l.protocolNumber
        inner.sourcePort = l.sourcePort
        inner.destinationPort = l.destinationPort
        q.inner = inner
    }
}

extension PacketDecoder.Next {
    @inlinable var isIPv4: Bool {
        if case .ipv4 = self { return true }
        return false
    }
}
