// The traffic of compare-live.sh's trafgen senders, in memory: 64-byte Ethernet/IPv4/UDP frames
// from 10.250.0.2 to 10.250.0.1:9 whose source port counts from 1024 through `flows` values, so
// every packet hits another flow. Frames sit 128 bytes apart, as in a TPACKET_V3 ring.
// Shared by lookahead-bench, entry-bench and CaptureCoreBenchmarks.
import CaptureCore

/// A buffer of trafgen frames; frame `n` (any n ≥ 0) has source port 1024 + (n mod count) mod flows.
public final class TrafgenFrames: @unchecked Sendable {
    public static let stride = 128
    public static let frameLength = 64
    public let count: Int
    public let flows: Int
    let buffer: UnsafeMutableRawPointer

    /// `count` frames (`count` × 128 bytes) cycling through `flows` source ports.
    public init(count: Int, flows: Int) {
        self.count = count
        self.flows = flows
        buffer = .allocate(byteCount: count * Self.stride, alignment: 4096)
        let header: [UInt8] = [
            0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00,  // Ethernet
            0x45, 0, 0, 50, 0, 0, 0, 0, 1, 17, 0, 0, 10, 250, 0, 2, 10, 250, 0, 1,  // IPv4, 50 bytes
        ]
        for i in 0..<count {
            let f = buffer + i * Self.stride
            f.copyMemory(from: header, byteCount: header.count)
            f.storeBytes(of: UInt16(1024 + i % flows).bigEndian, toByteOffset: 34, as: UInt16.self)
            f.storeBytes(of: UInt16(9).bigEndian, toByteOffset: 36, as: UInt16.self)
            f.storeBytes(of: UInt16(30).bigEndian, toByteOffset: 38, as: UInt16.self)
            f.storeBytes(of: UInt16(0), toByteOffset: 40, as: UInt16.self)
            (f + 42).initializeMemory(as: UInt8.self, repeating: 0x41, count: Self.frameLength - 42)
        }
    }

    deinit { buffer.deallocate() }

    /// The bytes of frame `n`, valid as long as this object lives.
    @inline(__always)
    public func frame(_ n: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: buffer + (n % count) * Self.stride, count: Self.frameLength)
    }
}

extension TrafgenFrames {
    /// Frames `range` through `tracker`, as AFPacketSource hands a ring block to a worker: each
    /// frame `process`ed, and first `prepare`d `distance` frames earlier (0: never prepared).
    /// Frame n is stamped n µs; frames past the range are not prepared.
    @inline(never)
    public func replay(
        _ range: Range<Int>, distance: Int, into tracker: inout FlowTracker<DiscardingFlowSink>, decoder: PacketDecoder
    ) {
        func time(_ n: Int) -> Timestamp { Timestamp(nanoseconds: UInt64(n) &* 1000) }
        if distance > 0 {
            for a in range.lowerBound..<min(range.lowerBound &+ distance, range.upperBound) {
                tracker.prepare(frame: frame(a).bytes, linkType: .ethernet, decoder: decoder, timestamp: time(a),
                                wireLength: Self.frameLength)
            }
        }
        for n in range {
            let a = n &+ distance
            if distance > 0 && a < range.upperBound {
                tracker.prepare(frame: frame(a).bytes, linkType: .ethernet, decoder: decoder, timestamp: time(a),
                                wireLength: Self.frameLength)
            }
            tracker.process(frame: frame(n).bytes, linkType: .ethernet, decoder: decoder, timestamp: time(n),
                            wireLength: Self.frameLength)
        }
    }
}

/// A decoded one-layer UDP packet 11.x.y.z:40000 → 10.96.0.1:53 (IP length 60) whose source
/// address ``setSource(_:)`` picks: one synthetic flow per source, without decoding (the table
/// memory benchmark and entry-bench).
public struct SyntheticUDPPacket {
    public var packet = DecodedPacket()
    var layer = NetworkLayer()

    public init() {
        packet.layerCount = 1
        layer.ipVersion = 4
        layer.protocolNumber = 17
        layer.hasPorts = true
        layer.sourcePort = 40000
        layer.destinationPort = 53
        layer.ipLength = 60
        layer.transportOffset = 34
        layer.destination = IPAddress(ipv4: 0x0A60_0001)
    }

    /// Makes the packet come from 11.0.0.0 + `n`.
    public mutating func setSource(_ n: UInt32) {
        layer.source = IPAddress(ipv4: 0x0B00_0000 | n)
        packet.layers[0] = layer
    }
}
