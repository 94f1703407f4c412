/// Open-addressing (linear probing) hash tables from an address to the newest interval of its
/// holder chain. Keys are never removed (a key whose chain emptied keeps head 0), the table
/// doubles at half load, so a probe sequence is short and ends at an empty slot.

/// IPv4: 8-byte slots keyed by the host-order address value. Key 0 (0.0.0.0) marks an empty
/// slot and is never stored.
struct IPv4AddressTable: Sendable {
    struct Slot: Sendable {
        var key: UInt32
        /// Interval index of the chain's newest entry (0 = none), with ``hostNetworkBit``
        /// set when a hostNetwork pod ever held the address (the lookup must walk the chain).
        var head: UInt32
    }
    static let hostNetworkBit: UInt32 = 1 << 31

    private(set) var slots: [Slot]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = Array(repeating: Slot(key: 0, head: 0), count: size)
        mask = size - 1
    }

    @inline(__always) static func hash(_ key: UInt32) -> Int {
        // Fibonacci hashing: pod addresses are sequential, the multiply spreads them.
        Int(truncatingIfNeeded: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> 32)
    }

    /// The slot value of `key`, or 0 when absent.
    @inline(__always) func head(_ key: UInt32) -> UInt32 {
        var i = Self.hash(key) & mask
        while true {
            let slot = slots[i]
            if slot.key == key { return slot.head }
            if slot.key == 0 { return 0 }
            i = (i &+ 1) & mask
        }
    }

    /// Sets the head of `key` (inserting it). `key` must not be 0.
    mutating func setHead(_ key: UInt32, _ head: UInt32) {
        var i = Self.hash(key) & mask
        while true {
            if slots[i].key == key {
                slots[i].head = head
                return
            }
            if slots[i].key == 0 {
                slots[i] = Slot(key: key, head: head)
                count += 1
                if count * 2 > slots.count { grow() }
                return
            }
            i = (i &+ 1) & mask
        }
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: Slot(key: 0, head: 0), count: old.count * 2)
        mask = slots.count - 1
        count = 0
        for s in old where s.key != 0 { setHead(s.key, s.head) }
    }

    var bytes: Int { slots.count * MemoryLayout<Slot>.stride }
}

/// IPv6: 24-byte slots keyed by the 128-bit address; key (0, 0) (`::`) marks an empty slot.
struct IPv6AddressTable: Sendable {
    struct Slot: Sendable {
        var high: UInt64
        var low: UInt64
        var head: UInt32
    }

    private(set) var slots: [Slot]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int = 256) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = Array(repeating: Slot(high: 0, low: 0, head: 0), count: size)
        mask = size - 1
    }

    @inline(__always) static func hash(_ high: UInt64, _ low: UInt64) -> Int {
        var x = high ^ (low &* 0x9E37_79B9_7F4A_7C15)
        x ^= x >> 29
        x &*= 0xBF58_476D_1CE4_E5B9
        x ^= x >> 32
        return Int(truncatingIfNeeded: x)
    }

    @inline(__always) func head(_ high: UInt64, _ low: UInt64) -> UInt32 {
        var i = Self.hash(high, low) & mask
        while true {
            let slot = slots[i]
            if slot.high == high && slot.low == low { return slot.head }
            if slot.high == 0 && slot.low == 0 { return 0 }
            i = (i &+ 1) & mask
        }
    }

    mutating func setHead(_ high: UInt64, _ low: UInt64, _ head: UInt32) {
        var i = Self.hash(high, low) & mask
        while true {
            if slots[i].high == high && slots[i].low == low {
                slots[i].head = head
                return
            }
            if slots[i].high == 0 && slots[i].low == 0 {
                slots[i] = Slot(high: high, low: low, head: head)
                count += 1
                if count * 2 > slots.count { grow() }
                return
            }
            i = (i &+ 1) & mask
        }
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: Slot(high: 0, low: 0, head: 0), count: old.count * 2)
        mask = slots.count - 1
        count = 0
        for s in old where s.high != 0 || s.low != 0 { setHead(s.high, s.low, s.head) }
    }

    var bytes: Int { slots.count * MemoryLayout<Slot>.stride }
}
