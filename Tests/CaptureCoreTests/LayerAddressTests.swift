@testable import CaptureCore
import Testing

@Suite("Network layers read in place")
struct LayerAddressTests {
    /// The flow tracker reads each layer through its address instead of copying it: every
    /// address must be that layer's, for all four slots.
    @Test("DecodedPacket.layer(_:of:) is the address of layers[i]")
    func addressesMatchSubscript() {
        var packet = DecodedPacket()
        for i in 0..<PacketDecoder.maximumNetworkLayers {
            var layer = NetworkLayer()
            layer.ipVersion = 4
            layer.source = IPAddress(ipv4: 0x0A00_0001 + UInt32(i))
            layer.sourcePort = UInt16(1000 + i)
            layer.icmpCode = UInt8(i + 1)  // the last field
            packet.layers[i] = layer
        }
        packet.layerCount = PacketDecoder.maximumNetworkLayers
        unsafe withUnsafePointer(to: packet) { p in
            for i in 0..<PacketDecoder.maximumNetworkLayers {
                let l = unsafe DecodedPacket.layer(i, of: p)
                #expect(unsafe l.pointee.source == packet.layers[i].source)
                #expect(unsafe l.pointee.sourcePort == UInt16(1000 + i))
                #expect(unsafe l.pointee.icmpCode == UInt8(i + 1))
            }
        }
    }
}
