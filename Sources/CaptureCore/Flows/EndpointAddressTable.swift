#if canImport(Glibc)
import Glibc
#endif

/// Interned IP addresses, reference-counted, in memory fixed at start: a flow keeps 2-byte
/// IDs instead of 16-byte addresses for what many flows share (a tunnel's node addresses).
///
/// ``intern(_:)`` returns an ID that holds one reference; ``release(_:)`` gives it back, and
/// an address no flow holds leaves the table at once, so the table holds at most as many
/// addresses as tracked flows hold distinct ones. When all ``capacity`` places are held, a
/// new address gets ID 0 (the zero address) and is counted in ``notKept``. Not thread-safe:
/// one per ``FlowTracker``.
@usableFromInline
final class EndpointAddressTable {
    @usableFromInline typealias ID = UInt16
    @usableFromInline let capacity: Int
    /// Per ID (0 unused): the address and how many holders it has (0: the place is free).
    @usableFromInline let addresses: UnsafeMutablePointer<IPAddress>
    @usableFromInline let references: UnsafeMutablePointer<UInt32>
    /// Open addressing, linear probing: an ID, or 0 for an empty slot (two to four per place).
    @usableFromInline let index: UnsafeMutablePointer<ID>
    @usableFromInline let slotMask: Int
    /// Places never used yet start at `unused`; released places are stacked in `free`.
    @usableFromInline let free: UnsafeMutablePointer<ID>
    @usableFromInline var freeCount = 0
    @usableFromInline var unused = 1
    /// Addresses not interned because every place was held.
    @usableFromInline private(set) var notKept: UInt64 = 0
    /// Addresses held now.
    @usableFromInline private(set) var count = 0

    /// The most places a table can have (IDs are 16 bits).
    @usableFromInline static var maximumCapacity: Int { Int(UInt16.max) }

    /// - Parameter capacity: distinct addresses held at once, 1 ... 65 535.
    @usableFromInline init(capacity: Int) {
        precondition(capacity > 0 && capacity <= Self.maximumCapacity, "EndpointAddressTable capacity must be in 1...65535")
        self.capacity = capacity
        var slots = 16
        while slots < capacity * 2 { slots <<= 1 }
        slotMask = slots - 1
        addresses = zeroedAllocation(IPAddress.self, count: capacity + 1)
        references = zeroedAllocation(UInt32.self, count: capacity + 1)
        index = zeroedAllocation(ID.self, count: slots)
        free = zeroedAllocation(ID.self, count: capacity)
    }

    deinit {
        unsafe releaseZeroedAllocation(addresses, count: capacity + 1)
        unsafe releaseZeroedAllocation(references, count: capacity + 1)
        unsafe releaseZeroedAllocation(index, count: slotMask + 1)
        unsafe releaseZeroedAllocation(free, count: capacity)
    }

    /// Bytes allocated per place (address, reference count, two to four index slots, free stack).
    @usableFromInline static var bytesPerPlace: Int { MemoryLayout<IPAddress>.stride + 4 + 2 * 2 + 2 }
    /// Bytes allocated in all.
    @usableFromInline var bytes: Int {
        (capacity + 1) * (MemoryLayout<IPAddress>.stride + 4) + (slotMask + 1) * 2 + capacity * 2
    }

    @inlinable @inline(__always)
    func home(_ a: IPAddress) -> Int {
        var h = a.low &* 0x9E37_79B9_7F4A_7C15 ^ a.high &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 29
        h &*= 0xBF58_476D_1CE4_E5B9
        return Int(truncatingIfNeeded: h >> 32) & slotMask
    }

    /// The address of `id`; the zero address for ID 0.
    @inlinable subscript(id: ID) -> IPAddress {
        id == 0 ? .zero : unsafe addresses[Int(id)]
    }

    /// An ID for `address` holding one reference (release it with ``release(_:)``), or 0 when
    /// every place is held by another address.
    @usableFromInline
    func intern(_ address: IPAddress) -> ID {
        var slot = home(address)
        while true {
            let id = unsafe index[slot]
            if id == 0 { break }
            if unsafe addresses[Int(id)] == address {
                unsafe references[Int(id)] &+= 1
                return id
            }
            slot = (slot &+ 1) & slotMask
        }
        let id: ID
        if freeCount > 0 {
            freeCount &-= 1
            id = unsafe free[freeCount]
        } else if unused <= capacity {
            id = ID(unused)
            unused &+= 1
        } else {
            notKept &+= 1
            return 0
        }
        unsafe addresses[Int(id)] = address
        unsafe references[Int(id)] = 1
        unsafe index[slot] = id
        count &+= 1
        return id
    }

    /// Gives back one reference of `id` (0 is ignored); the last one frees its place.
    @usableFromInline
    func release(_ id: ID) {
        guard id != 0 else { return }
        precondition(unsafe references[Int(id)] > 0, "EndpointAddressTable: release of an unheld ID \(id)")
        unsafe references[Int(id)] &-= 1
        guard unsafe references[Int(id)] == 0 else { return }
        var slot = unsafe home(addresses[Int(id)])
        while unsafe index[slot] != id { slot = (slot &+ 1) & slotMask }
        unsafe removeSlot(slot, from: index, slotMask: slotMask) { unsafe home(addresses[Int($0)]) }
        unsafe free[freeCount] = id
        freeCount &+= 1
        count &-= 1
    }
}

/// Empties `slot` of an open-addressing (linear probing) index whose empty slots are 0, and
/// moves later slots of the probe chain back (backward-shift deletion), so every chain stays
/// unbroken without tombstones. `home` gives the home slot of a slot's value.
@inlinable
func removeSlot<Slot: FixedWidthInteger>(
    _ slot: Int, from index: UnsafeMutablePointer<Slot>, slotMask: Int, home: (Slot) -> Int
) {
    var hole = slot
    var j = slot
    while true {
        j = (j &+ 1) & slotMask
        let e = unsafe index[j]
        if e == 0 { break }
        let h = home(e)
        let between = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j)
        if between { continue }
        unsafe index[hole] = e
        hole = j
    }
    unsafe index[hole] = 0
}
