// The classic BPF program behind AFPacketFanoutMode.flow: the kernel runs it once per packet
// (PACKET_FANOUT_CBPF) and sends the packet to member (return value % members).

/// A symmetric hash of a packet's innermost flow, as a classic BPF program for
/// `PACKET_FANOUT_CBPF`.
///
/// - IPv4 and IPv6: source XOR destination address, and for TCP, SCTP and UDP over IPv4 source
///   XOR destination port (IPv4 fragments, IPv6 fragments after the first and IPv6 packets
///   with more than four extension headers: addresses only). The fanout's defragmentation
///   flag reassembles IPv4 datagrams before the program runs, not IPv6 ones: a fragment after
///   the first has no ports, so UDP over IPv6 (and over IPv4 without the flag) hashes its
///   addresses only, or a flow whose larger datagrams travel in fragments would be split
///   between members.
/// - VXLAN (UDP destination port 4789 or flannel's 8472, or the group's ports) and Geneve
///   (6081 or the group's port, with any options, carrying Ethernet), over IPv4 or IPv6,
///   carrying IPv4 or IPv6: the inner packet's
///   addresses and ports instead (inner UDP, inner IPv4 fragments and inner IPv6 packets with
///   extension headers: inner addresses only; nothing reassembles inner fragments). The
///   outer source port of such a packet is a hash of the inner flow made on the sending
///   node, so the two directions of one inner flow travel in outer packets with different
///   source ports; a hash that includes them (`PACKET_FANOUT_HASH`) can send the two
///   directions to different members.
/// - ICMP and ICMPv6 errors: the packet they quote, as above, so an error reaches the member
///   of the flow it reports on (the tracker attributes it there and keys the error's own flow
///   by the quoted ports). Inside tunnels too: an inner error goes where the inner packet it
///   quotes goes, by the inner rules below.
/// - IP in IP (protocol 4 or 41, e.g. Calico's IPIP mode), over IPv4 or IPv6: the inner
///   packet's addresses and ports, by the same rules as inside VXLAN.
/// - GRE (version 0, protocol 47) carrying IPv4, IPv6 or an Ethernet frame (transparent
///   Ethernet bridging), with any of the checksum, key and sequence fields: the inner packet,
///   by the same rules.
/// - Other tunnel payloads (a Geneve packet that carries IP without Ethernet, an inner frame
///   with a VLAN tag, PPTP's GRE, GRE with the routing flag): the outer addresses only, so
///   they stay together too.
/// - VLAN tags (802.1Q, 802.1ad) are skipped, up to three per frame counting the one the
///   kernel may hold apart from the frame (`SKF_AD_VLAN_TAG_PRESENT`): the kernel takes the
///   outermost tag out of a received frame and leaves the others in it, and may or may not
///   have taken it out of a sent one, so both directions of a QinQ flow count the same tags.
/// - Anything else (ARP, frames with more than three tags): member 0.
///
/// XOR is symmetric, so both directions of a flow get the same value; a multiply-xorshift
/// mix spreads it over the low bits the kernel's modulo uses. The kernel runs fanout programs
/// on received packets after the link header was pulled and on sent ones before, so the
/// program finds the network header itself (the packet type and device type come from the
/// packet's metadata); a received frame's outermost VLAN tag is already out of it, a sent
/// frame's may not be.
/// Every load is relative to that offset and goes through the kernel's load helper, which
/// also reads headers that sit in page fragments rather than the linear part (packets from a
/// TX ring, zero-copy sends). A load past the end of a truncated packet ends the program with
/// 0: member 0.
enum FlowFanoutProgram {
    /// The program; `ipv4Reassembled`: the group has the defragmentation flag; VXLAN on the
    /// UDP destination ports `vxlanPorts` (0s ignored), Geneve on `genevePort` (0: none).
    static func instructions(ipv4Reassembled: Bool, vxlanPorts: [UInt16], genevePort: UInt16) -> [PacketFilter.Instruction] {
        let vxlanPorts = Array(Set(vxlanPorts.filter { $0 != 0 })).sorted().map(UInt32.init)
        var a = Assembler()
        // Where the network header starts: received packets reach the fanout with the link
        // header already pulled (offset 0), sent ones with it (14 bytes on Ethernet and
        // loopback, plus any 802.1Q/802.1ad tags still in the frame; 0 on IP-only devices).
        // At "dispatch": X = that offset, A = the EtherType.
        a.load(.word, absolute: ancillary(4))  // SKF_AD_PKTTYPE
        a.jumpIfEqual(4, then: "sent", else: "received")  // PACKET_OUTGOING
        a.label("sent")
        a.load(.word, absolute: ancillary(28))  // SKF_AD_HATYPE
        a.jumpIfEqual(anyOf: [1, 772], then: "ethernet", else: "received")  // ARPHRD_ETHER, _LOOPBACK
        a.label("ethernet")
        // EtherType after 0, 1 or 2 VLAN tags in the frame, or 3 when the kernel holds none
        // apart (a fourth tag counts as the EtherType: member 0).
        for tags: UInt32 in 0..<3 {
            a.load(.half, absolute: 12 + 4 * tags)
            a.jumpIfVLAN(then: "tags-\(tags + 1)", else: "tags-\(tags)-only")
            a.label("tags-\(tags)-only")
            a.loadImmediateX(14 + 4 * tags)
            a.jump("dispatch")
            a.label("tags-\(tags + 1)")
        }
        skipThirdTag(&a, ifNoneHeldApart: "sent-tags-3", etherTypeAt: 12 + 4 * 3)
        a.jump("dispatch")
        // Received, or sent on a device without a link header. A tagged frame arrives with
        // its outermost tag taken out and the protocol of the next: any further tags start
        // the payload (2-byte TCI, then the EtherType). Skip up to 2, or 3 when the kernel
        // holds none apart, as for sent frames.
        a.label("received")
        a.loadImmediateX(0)
        a.load(.half, absolute: ancillary(0))  // SKF_AD_PROTOCOL
        for tags: UInt32 in 0..<2 {
            a.jumpIfVLAN(then: "payload-tags-\(tags + 1)", else: "dispatch")
            a.label("payload-tags-\(tags + 1)")
            a.load(.half, absolute: 2 + 4 * tags)
            a.loadImmediateX(4 + 4 * tags)
        }
        a.jumpIfVLAN(then: "payload-tags-3", else: "dispatch")
        a.label("payload-tags-3")
        skipThirdTag(&a, ifNoneHeldApart: "payload-tags-3-only", etherTypeAt: 2 + 4 * 2)

        a.label("dispatch")
        a.jump(on: [(0x0800, "v4"), (0x86dd, "v6")], otherwise: "not-ip")
        // Not IP, or behind too many tags: member 0 (here, within a conditional jump's reach).
        a.label("not-ip")
        a.returnK(0)

        // IPv4: M[0] = source ^ destination.
        a.label("v4")
        ipv4Header(&a, "v4", fragmentBits: 0x3fff_0000)  // MF or an offset
        a.loadImmediate(4)
        a.store(5)  // M[5] = the IP version
        a.load(memory: 1)
        a.jumpIfEqual(1, then: "icmp4", else: "transport")

        // IPv6: M[0] = XOR of the eight address words.
        a.label("v6")
        ipv6Header(&a)
        a.loadImmediate(6)
        a.store(5)
        // Up to four extension headers are skipped: hop-by-hop, routing and destination
        // options by their length, a fragment header when it starts its datagram (offset 0:
        // a first fragment, or an atomic fragment that some stacks add to whole packets, so
        // that a flow's packets with and without one hash alike). A later fragment has no
        // ports: addresses only.
        for n in 0..<4 {
            a.load(memory: 1)
            a.jumpIfEqual(anyOf: [0, 43, 60], then: "v6-ext\(n)-options", else: "v6-ext\(n)-not-options")
            a.label("v6-ext\(n)-not-options")
            a.jumpIfEqual(44, then: "v6-ext\(n)-fragment", else: "v6-upper")
            a.label("v6-ext\(n)-fragment")
            a.load(.half, plusX: 2)  // fragment offset << 3 | flags
            a.jumpIfAnyBit(0xfff8, then: "addresses", else: "v6-ext\(n)-first")
            a.label("v6-ext\(n)-first")
            a.load(.byte, plusX: 0)
            a.store(1)
            a.addToX(8)
            a.jump("v6-ext\(n + 1)")
            a.label("v6-ext\(n)-options")
            a.load(.byte, plusX: 0)
            a.store(1)
            a.load(.byte, plusX: 1)  // length in 8-byte units, not counting the first 8
            a.addK(1)
            a.leftShift(3)
            a.addX()
            a.tax()
            a.label("v6-ext\(n + 1)")
        }
        a.label("v6-upper")  // M[1] = the upper-layer protocol (or a fifth extension header), X = its header
        a.load(memory: 1)
        a.jumpIfEqual(58, then: "icmp6", else: "transport")

        // An ICMP error (X = its header) goes where the packet it quotes goes: that packet's
        // addresses, protocol and transport header (quoted after the 8-byte ICMP header) take
        // the error's place, so the error reaches the thread that tracks the flow it reports
        // on, whoever sent it (the destination, or a router on the way).
        a.label("icmp4")
        a.load(.byte, plusX: 0)  // type: unreachable, source quench, redirect, time exceeded, parameter problem
        a.jumpIfEqual(anyOf: [3, 4, 5, 11, 12], then: "icmp4-error", else: "addresses")
        a.label("icmp4-error")
        a.addToX(8)  // X = the quoted IPv4 header
        ipv4Header(&a, "icmp4-quoted", fragmentBits: 0x1fff_0000)  // a later fragment: no ports
        a.jump("transport")
        a.label("icmp6")
        a.load(.byte, plusX: 0)  // type: unreachable, packet too big, time exceeded, parameter problem
        a.jumpIfEqual(anyOf: [1, 2, 3, 4], then: "icmp6-error", else: "addresses")
        a.label("icmp6-error")
        a.addToX(8)  // X = the quoted IPv6 header
        ipv6Header(&a)

        // M[1] = the transport protocol, X = its header.
        a.label("transport")
        a.load(memory: 1)
        a.jump(on: [(6, "tcp"), (132, "tcp"), (17, "udp"), (4, "ipip-v4"), (41, "ipip-v6"), (47, "gre")], otherwise: "addresses")
        a.label("tcp")
        a.load(.word, plusX: 0)  // source port << 16 | destination port
        a.store(3)
        a.jump("ports")
        a.label("udp")
        a.load(.word, plusX: 0)
        a.store(3)
        a.andK(0xffff)
        if vxlanPorts.isEmpty {
            a.jump("not-vxlan")
        } else {
            a.jumpIfEqual(anyOf: vxlanPorts, then: "vxlan", else: "not-vxlan")
        }
        a.label("not-vxlan")
        if genevePort == 0 {
            a.jump("udp-ports")
        } else {
            a.jumpIfEqual(UInt32(genevePort), then: "geneve", else: "udp-ports")
        }
        // Plain UDP: ports only when the datagram reached the program whole (IPv4, with the
        // defragmentation flag).
        a.label("udp-ports")
        if ipv4Reassembled {
            a.load(memory: 5)
            a.jumpIfEqual(4, then: "ports", else: "addresses")
        } else {
            a.jump("addresses")
        }

        // GRE (RFC 2784, with RFC 2890's key and sequence number), X = its header: 4 bytes,
        // plus 4 for each of the checksum, key and sequence flags, then IPv4 or IPv6 (as IP in
        // IP) or an Ethernet frame (transparent Ethernet bridging, 0x6558: X moves to where
        // VXLAN has its inner frame). With the routing flag, or version 1 (PPTP's enhanced
        // GRE, PPP inside): the outer addresses.
        a.label("gre")
        a.stx(7)
        a.load(.half, plusX: 2)  // protocol type
        a.store(8)
        a.load(.half, plusX: 0)  // flags and version
        a.jumpIfAnyBit(0x4007, then: "addresses", else: "gre-v0")
        a.label("gre-v0")
        a.store(9)
        a.andK(0x1000)  // sequence
        a.rightShift(10)
        a.tax()
        a.load(memory: 9)
        a.andK(0x2000)  // key
        a.rightShift(11)
        a.addX()
        a.tax()
        a.load(memory: 9)
        a.andK(0x8000)  // checksum
        a.rightShift(13)
        a.addX()
        a.addK(4)
        a.ldx(memory: 7)
        a.addX()
        a.tax()  // X = the payload
        a.load(memory: 8)
        a.jump(on: [(0x0800, "ipip-v4"), (0x86dd, "ipip-v6"), (0x6558, "gre-ethernet")], otherwise: "addresses")
        a.label("gre-ethernet")
        a.txa()
        a.subK(16)
        a.tax()
        a.jump("vxlan")

        // Geneve: X = the outer UDP header; UDP 8, Geneve 8 plus 4 × (low 6 bits of its first
        // byte) of options, then (protocol 0x6558) an Ethernet frame. X moves past the options,
        // which leaves the inner frame where VXLAN has it.
        a.label("geneve")
        a.load(.half, plusX: 8 + 2)  // protocol type
        a.jumpIfEqual(0x6558, then: "geneve-ethernet", else: "addresses")
        a.label("geneve-ethernet")
        a.addToX(fourTimesByteAt: 8, mask: 0x3f)  // option length

        // VXLAN: X = the outer UDP header; UDP 8 + VXLAN 8, then the inner Ethernet frame
        // (inner IPv4 header at X + 30).
        a.label("vxlan")
        a.load(.half, plusX: 8 + 8 + 12)  // inner EtherType
        a.jump(on: [(0x0800, "vxlan-v4"), (0x86dd, "vxlan-v6")], otherwise: "addresses")
        innerFlow(&a, "vxlan", at: 30, errors: true)
        // IP in IP (Calico's IPIP mode, ip6tnl): the inner packet at X.
        innerFlow(&a, "ipip", at: 0, errors: true)
        // The packet an inner ICMP error quotes, at X.
        innerFlow(&a, "inner-quoted", at: 0, errors: false)

        // A = source port ^ destination port, from M[3] = source << 16 | destination.
        a.label("ports")
        a.load(memory: 3)
        a.rightShift(16)
        a.store(4)
        a.load(memory: 3)
        a.andK(0xffff)
        a.ldx(memory: 4)
        a.xorX()
        a.jump("mix")

        a.label("addresses")
        a.loadImmediate(0)

        // hash = mix(M[0] ^ A * golden ratio).
        a.label("mix")
        a.mulK(0x9e37_79b1)
        a.tax()
        a.load(memory: 0)
        a.xorX()
        a.mulK(0x85eb_ca6b)
        a.tax()
        a.rightShift(16)
        a.xorX()
        a.returnA()
        return a.resolved()
    }

    /// The IPv4 header at X: M[0] = source ^ destination, M[1] = the protocol, X = the
    /// header after it. A fragment with any of `fragmentBits` (of the word at 6: flags and
    /// offset, TTL, protocol) set goes by its addresses ("addresses").
    private static func ipv4Header(_ a: inout Assembler, _ name: String, fragmentBits: UInt32) {
        a.xorWords(plusX: [12, 16])
        a.store(0)
        a.load(.word, plusX: 6)
        a.jumpIfAnyBit(fragmentBits, then: "addresses", else: "\(name)-ports")
        a.label("\(name)-ports")
        a.andK(0xff)
        a.store(1)
        a.addToX(fourTimesByteAt: 0, mask: 0x0f)  // IPv4 header length
    }

    /// The fixed IPv6 header at X: M[0] = the XOR of the eight address words, M[1] = the next
    /// header, X = the header after the fixed one.
    private static func ipv6Header(_ a: inout Assembler) {
        a.xorWords(plusX: Array(stride(from: 8, through: 36, by: 4)))
        a.store(0)
        a.load(.byte, plusX: 6)
        a.store(1)
        a.addToX(40)
    }

    /// Past a frame's third VLAN tag, when the kernel holds none apart from the frame
    /// (`SKF_AD_VLAN_TAG_PRESENT`): A = the EtherType at `etherTypeAt`, X = the header after
    /// it. Otherwise the frame has four tags: "not-ip".
    private static func skipThirdTag(_ a: inout Assembler, ifNoneHeldApart label: String, etherTypeAt offset: UInt32) {
        a.load(.word, absolute: ancillary(48))  // SKF_AD_VLAN_TAG_PRESENT
        a.jumpIfEqual(0, then: label, else: "not-ip")
        a.label(label)
        a.load(.half, absolute: offset)
        a.loadImmediateX(offset + 2)
    }

    /// The hash input of a tunnel's inner IPv4 packet (entered at "`name`-v4") or IPv6 packet
    /// ("`name`-v6") that starts at X + `offset`: M[0] = its addresses, and for TCP and SCTP
    /// (not fragmented, no IPv6 extension headers) M[3] = its ports, then "ports"; anything
    /// else goes by the inner addresses. Inner UDP too: nothing reassembles inner fragments,
    /// and a later fragment has no ports.
    ///
    /// With `errors`, an inner ICMP or ICMPv6 error goes by the inner packet it quotes, by the
    /// same rules, through "inner-quoted-v4" / "inner-quoted-v6" (``innerFlow`` named
    /// "inner-quoted", at 0, without `errors`, placed after every tunnel's).
    private static func innerFlow(_ a: inout Assembler, _ name: String, at offset: UInt32, errors: Bool) {
        a.label("\(name)-v4")
        a.xorWords(plusX: [offset + 12, offset + 16])
        a.store(0)  // the inner addresses replace the outer ones
        a.load(.word, plusX: offset + 6)
        a.jumpIfAnyBit(0x3fff_0000, then: "addresses", else: "\(name)-unfragmented")
        a.label("\(name)-unfragmented")
        a.andK(0xff)
        a.jumpIfEqual(anyOf: [6, 132], then: "\(name)-ports", else: errors ? "\(name)-not-ports" : "addresses")  // TCP, SCTP
        if errors {
            a.label("\(name)-not-ports")
            a.jumpIfEqual(1, then: "\(name)-icmp4", else: "addresses")
        }
        a.label("\(name)-ports")
        a.addToX(fourTimesByteAt: offset, mask: 0x0f)  // inner IPv4 header length: X + offset = the inner transport header
        a.load(.word, plusX: offset)
        a.store(3)
        a.jump("ports")
        if errors {
            a.label("\(name)-icmp4")
            a.addToX(fourTimesByteAt: offset, mask: 0x0f)  // X + offset = the inner ICMP header
            a.load(.byte, plusX: offset)
            a.jumpIfEqual(anyOf: [3, 4, 5, 11, 12], then: "\(name)-icmp4-error", else: "addresses")
            a.label("\(name)-icmp4-error")
            a.addToX(offset + 8)  // X = the quoted IPv4 header
            a.jump("inner-quoted-v4")
        }
        a.label("\(name)-v6")
        a.xorWords(plusX: Array(stride(from: offset + 8, through: offset + 36, by: 4)))
        a.store(0)
        a.load(.byte, plusX: offset + 6)  // next header
        a.jumpIfEqual(anyOf: [6, 132], then: "\(name)-v6-ports", else: errors ? "\(name)-v6-not-ports" : "addresses")
        if errors {
            a.label("\(name)-v6-not-ports")
            a.jumpIfEqual(58, then: "\(name)-icmp6", else: "addresses")
        }
        a.label("\(name)-v6-ports")
        a.load(.word, plusX: offset + 40)
        a.store(3)
        a.jump("ports")
        if errors {
            a.label("\(name)-icmp6")
            a.load(.byte, plusX: offset + 40)
            a.jumpIfEqual(anyOf: [1, 2, 3, 4], then: "\(name)-icmp6-error", else: "addresses")
            a.label("\(name)-icmp6-error")
            a.addToX(offset + 48)  // X = the quoted IPv6 header
            a.jump("inner-quoted-v6")
        }
    }

    /// An ancillary load's offset (SKF_AD_OFF + `field`).
    private static func ancillary(_ field: Int32) -> UInt32 { UInt32(bitPattern: -0x1000 + field) }

    /// A classic BPF assembler with forward labels (all this program needs).
    struct Assembler {
        enum Size: UInt16 { case word = 0x00, half = 0x08, byte = 0x10 }
        private var code: [(op: UInt16, jt: String?, jf: String?, k: UInt32, ja: String?)] = []
        private var labels: [String: Int] = [:]

        private mutating func emit(_ op: UInt16, _ k: UInt32 = 0, jt: String? = nil, jf: String? = nil, ja: String? = nil) {
            code.append((op: op, jt: jt, jf: jf, k: k, ja: ja))
        }
        mutating func label(_ name: String) {
            precondition(labels[name] == nil, "label \(name) defined twice")
            labels[name] = code.count
        }
        mutating func load(_ size: Size, absolute k: UInt32) { emit(0x00 | size.rawValue | 0x20, k) }
        mutating func load(_ size: Size, plusX offset: UInt32) { emit(0x00 | size.rawValue | 0x40, offset) }
        mutating func load(memory slot: UInt32) { emit(0x00 | 0x60, slot) }
        mutating func loadImmediate(_ k: UInt32) { emit(0x00, k) }
        mutating func loadImmediateX(_ k: UInt32) { emit(0x01, k) }
        mutating func ldx(memory slot: UInt32) { emit(0x01 | 0x60, slot) }
        mutating func store(_ slot: UInt32) { emit(0x02, slot) }
        mutating func stx(_ slot: UInt32) { emit(0x03, slot) }
        mutating func xorX() { emit(0x04 | 0xa0 | 0x08) }
        mutating func addX() { emit(0x04 | 0x00 | 0x08) }
        mutating func andK(_ k: UInt32) { emit(0x04 | 0x50, k) }
        mutating func mulK(_ k: UInt32) { emit(0x04 | 0x20, k) }
        mutating func leftShift(_ k: UInt32) { emit(0x04 | 0x60, k) }
        mutating func rightShift(_ k: UInt32) { emit(0x04 | 0x70, k) }
        mutating func addK(_ k: UInt32) { emit(0x04 | 0x00, k) }
        mutating func subK(_ k: UInt32) { emit(0x04 | 0x10, k) }
        mutating func tax() { emit(0x07 | 0x00) }
        mutating func txa() { emit(0x07 | 0x80) }
        /// X += `k`. A is clobbered.
        mutating func addToX(_ k: UInt32) {
            txa()
            addK(k)
            tax()
        }
        /// X += 4 × (the byte at X + `offset` & `mask`): past a header whose length field
        /// counts 4-byte words (IPv4's IHL, Geneve's option length). A is clobbered.
        mutating func addToX(fourTimesByteAt offset: UInt32, mask: UInt32) {
            load(.byte, plusX: offset)
            andK(mask)
            leftShift(2)
            addX()
            tax()
        }
        mutating func jumpIfEqual(_ k: UInt32, then t: String, else f: String) { emit(0x05 | 0x10, k, jt: t, jf: f) }
        mutating func jumpIfAnyBit(_ k: UInt32, then t: String, else f: String) { emit(0x05 | 0x40, k, jt: t, jf: f) }
        /// To `t` when A is an 802.1Q or 802.1ad EtherType.
        mutating func jumpIfVLAN(then t: String, else f: String) { jumpIfEqual(anyOf: [0x8100, 0x88a8], then: t, else: f) }
        /// To `t` when A equals any of `values`, else to `f`.
        mutating func jumpIfEqual(anyOf values: [UInt32], then t: String, else f: String) {
            jump(on: values.map { ($0, t) }, otherwise: f)
        }
        /// To the label of the first case whose value A equals, else to `otherwise`.
        mutating func jump(on cases: [(UInt32, String)], otherwise f: String) {
            for (n, (k, t)) in cases.enumerated() {
                let next = n == cases.count - 1 ? f : "case-\(code.count)"
                jumpIfEqual(k, then: t, else: next)
                if next != f { label(next) }
            }
        }
        /// A = the XOR of the words at X + each offset, through M[2]; X is left as it was.
        mutating func xorWords(plusX offsets: [UInt32]) {
            stx(6)
            load(.word, plusX: offsets[0])
            for offset in offsets.dropFirst() {
                store(2)
                ldx(memory: 6)
                load(.word, plusX: offset)
                ldx(memory: 2)
                xorX()
            }
            ldx(memory: 6)
        }
        mutating func jump(_ target: String) { emit(0x05 | 0x00, ja: target) }
        mutating func returnA() { emit(0x06 | 0x10) }
        mutating func returnK(_ k: UInt32) { emit(0x06, k) }

        /// The program with every label turned into a forward offset.
        func resolved() -> [PacketFilter.Instruction] {
            var code = self.code, labels = self.labels
            func offset(_ name: String?, from index: Int) -> Int {
                guard let name else { return 0 }
                guard let target = labels[name] else { preconditionFailure("undefined label \(name)") }
                let delta = target - (index + 1)
                precondition(delta >= 0, "label \(name) is behind instruction \(index): classic BPF jumps forward only")
                return delta
            }
            // A conditional jump reaches 255 instructions: one that must go further jumps to
            // an unconditional jump (32-bit reach) put right after it, which nothing else
            // reaches (a conditional jump never falls through). Repeat until all reach.
            func farJump() -> (index: Int, onTrue: Bool)? {
                for (index, i) in code.enumerated() where i.ja == nil {
                    if offset(i.jt, from: index) > 255 { return (index, true) }
                    if offset(i.jf, from: index) > 255 { return (index, false) }
                }
                return nil
            }
            while let (index, onTrue) = farJump() {
                let target = onTrue ? code[index].jt : code[index].jf
                let step = "far-\(index)-\(code.count)"
                for (name, at) in labels where at > index { labels[name] = at + 1 }
                code.insert((op: 0x05, jt: nil, jf: nil, k: 0, ja: target), at: index + 1)
                labels[step] = index + 1
                if onTrue { code[index].jt = step } else { code[index].jf = step }
            }
            return code.enumerated().map { index, i in
                if let ja = i.ja {
                    return PacketFilter.Instruction(code: i.op, jumpIfTrue: 0, jumpIfFalse: 0, k: UInt32(offset(ja, from: index)))
                }
                let t = offset(i.jt, from: index), f = offset(i.jf, from: index)
                return PacketFilter.Instruction(code: i.op, jumpIfTrue: UInt8(t), jumpIfFalse: UInt8(f), k: i.k)
            }
        }
    }
}
