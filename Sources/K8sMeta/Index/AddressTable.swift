/// Open-addressing (linear probing) hash tables from an address to the newest interval of its
/// holder chain. Keys are never removed (a key whose chain emptied keeps head 0), the table
/// doubles at half load, so a probe sequence is short and ends at an empty slot.
struct AddressTable<Key: AddressTableKey>: Sendable {
    struct Slot: Sendable {
        var key: Key
        /// Interval index of the chain's newest entry (0 = none), with ``hostNetworkBit``
        /// set when a hostNetwork pod ever held the address (the lookup must walk the chain).
        var head: UInt32
    }

    private(set) var slots: [Slot]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = Array(repeating: Slot(key: .empty, head: 0), count: size)
        mask = size - 1
    }

    /// The slot value of `key`, or 0 when absent.
    @inline(__always) func head(_ key: Key) -> UInt32 {
        var i = key.tableHash & mask
        while true {
            let slot = slots[i]
            if slot.key == key { return slot.head }
            if slot.key == .empty { return 0 }
            i = (i &+ 1) & mask
        }
    }

    /// Sets the head of `key` (inserting it). `key` must not be ``AddressTableKey/empty``.
    mutating func setHead(_ key: Key, _ head: UInt32) {
        var i = key.tableHash & mask
        while true {
            if slots[i].key == key {
                slots[i].head = head
                return
            }
            if slots[i].key == .empty {
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
        slots = Array(repeating: Slot(key: .empty, head: 0), count: old.count * 2)
        mask = slots.count - 1
        count = 0
        for s in old where s.key != .empty { setHead(s.key, s.head) }
    }

    var bytes: Int { slots.count * MemoryLayout<Slot>.stride }
}

/// Marks a chain that a hostNetwork pod ever held, in a slot's head.
let hostNetworkBit: UInt32 = 1 << 31

/// A key of an ``AddressTable``: one value is reserved to mark empty slots.
protocol AddressTableKey: Equatable, Sendable {
    static var empty: Self { get }
    var tableHash: Int { get }
}

/// IPv4 (8-byte slots): the host-order address value; 0 (0.0.0.0) marks an empty slot.
extension UInt32: AddressTableKey {
    static var empty: UInt32 { 0 }
    /// Fibonacci hashing: pod addresses are sequential, the multiply spreads them.
    @inline(__always) var tableHash: Int { Int(truncatingIfNeeded: (UInt64(self) &* 0x9E37_79B9_7F4A_7C15) >> 32) }
}

/// IPv6 (24-byte slots): the 128-bit address; `::` marks an empty slot.
struct IPv6Key: AddressTableKey {
    var high: UInt64
    var low: UInt64
    static var empty: IPv6Key { IPv6Key(high: 0, low: 0) }
    @inline(__always) var tableHash: Int {
        var x = high ^ (low &* 0x9E37_79B9_7F4A_7C15)
        x ^= x >> 29
        x &*= 0xBF58_476D_1CE4_E5B9
        x ^= x >> 32
        return Int(truncatingIfNeeded: x)
    }
}
