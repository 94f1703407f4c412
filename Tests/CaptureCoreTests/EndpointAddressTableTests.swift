@testable import CaptureCore
import Testing

@Suite("Endpoint address table")
struct EndpointAddressTableTests {
    /// 30,000 random interns and releases over 120 addresses (IPv4 and IPv6) with 50 places,
    /// checked against a dictionary after every step: IDs resolve to their address, an address
    /// held twice has one ID, the last release frees the place, a full table gives 0.
    @Test("Interning and releasing agree with a model; a full table gives 0 and counts it")
    func agreesWithAModel() {
        let capacity = 50
        let table = EndpointAddressTable(capacity: capacity)
        func address(_ i: Int) -> IPAddress {
            if i % 3 != 0 { return IPAddress(ipv4: 0x0A00_0000 | UInt32(i)) }
            let high: UInt64 = 0xFD00_0010_0244_0000 | UInt64(i)
            return IPAddress(high: high, low: UInt64(i) &* 0x9E37_79B9)
        }
        let pool = (0..<120).map(address)
        var held: [IPAddress: (id: EndpointAddressTable.ID, count: Int)] = [:]
        var holders: [(EndpointAddressTable.ID, IPAddress)] = []
        var rng = SplitMix64(seed: 7)
        var refusals: UInt64 = 0
        for _ in 0..<30_000 {
            if holders.isEmpty || rng.next() % 100 < 52 {
                let a = pool[Int(rng.next() % UInt64(pool.count))]
                let id = table.intern(a)
                if id == 0 {
                    refusals += 1
                    #expect(held[a] == nil && held.count == capacity)
                    continue
                }
                #expect(table[id] == a)
                if let h = held[a] { #expect(h.id == id) }
                held[a] = (id, (held[a]?.count ?? 0) + 1)
                holders.append((id, a))
            } else {
                let k = Int(rng.next() % UInt64(holders.count))
                let (id, a) = holders.remove(at: k)
                table.release(id)
                let h = held[a]!
                held[a] = h.count == 1 ? nil : (h.id, h.count - 1)
            }
            #expect(table.count == held.count)
        }
        #expect(refusals > 0 && table.notKept == refusals, "the test must fill the table")
        for (id, a) in holders { #expect(table[id] == a) }
        for (id, _) in holders { table.release(id) }
        #expect(table.count == 0)
        // Every place is free again.
        let fresh = (0..<capacity).map { table.intern(IPAddress(ipv4: 0xC0A8_0000 | UInt32($0))) }
        #expect(Set(fresh).count == capacity && !fresh.contains(0))
        #expect(table.intern(IPAddress(ipv4: 0x0808_0808)) == 0)
    }

    @Test("The tracker's endpoint table: a place per 8 flows, 64 to 65,535; an explicit size is kept up to 65,535")
    func trackerSizesTheTable() {
        func places(_ capacity: Int, _ explicit: Int = 0) -> Int {
            var c = FlowTrackerConfiguration(capacity: capacity)
            c.tunnelEndpointCapacity = explicit
            return c.resolvedTunnelEndpointCapacity
        }
        #expect(places(65_536) == 8192 && places(100) == 64 && places(1 << 30) == 65_535)
        #expect(places(65_536, 5) == 5 && places(65_536, 1_000_000) == 65_535)
        let tracker = FlowTracker(configuration: FlowTrackerConfiguration(capacity: 1 << 20), sink: DiscardingFlowSink())
        #expect(tracker.addresses.capacity == 65_535)
    }
}
