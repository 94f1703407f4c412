/// Interned names (DNS query names, TLS server names, ALPN protocols) for flow records.
///
/// Flows keep a 32-bit ``ID``; the text is stored once per distinct name. Lookup by the
/// decoder's case-insensitive hash allocates nothing; only a name seen for the first time
/// allocates its `String`. Used from the tracker's thread only.
///
/// Bounded, and it keeps working in a capture that runs for weeks: a ``FlowTracker``
/// ``retain(_:)``s the names its tracked flows hold and ``release(_:)``s them when the flow
/// ends. Once ``capacity`` names are held, a new name takes the place of the name that has
/// been unreferenced longest. Only when every held name belongs to a tracked flow does a new
/// name get ID 0; those are counted in ``overflowed`` (and in
/// ``FlowTrackerStatistics/namesNotKept``).
///
/// An ID names the same text for as long as a tracked flow holds it, and after that until its
/// place is reused; after that it names nothing (`""`), never another name. Resolve the names
/// of a record when you receive it (the bundled writers do), or at least before the table
/// has had to reuse places.
public final class NameTable {
    public typealias ID = UInt32
    public let capacity: Int
    /// Place `p` of an ID is its low ``placeBits`` bits; the rest count how often the place
    /// was reused (modulo 2¹²).
    @usableFromInline static var placeBits: UInt32 { 20 }
    @usableFromInline var ids: [UInt64: ID] = [:]
    /// Per place (0 is unused): the name, its hash, the current ID, and how many tracked flows hold it.
    @usableFromInline var names: [String] = [""]
    @usableFromInline var hashes: [UInt64] = [0]
    @usableFromInline var current: [ID] = [0]
    @usableFromInline var references: [UInt32] = [0]
    /// Places whose name no flow holds, oldest first (each at most once: `queued`).
    var unreferenced: [Int] = []
    var unreferencedHead = 0
    var queued: [Bool] = [false]
    /// Names that could not be interned because every place held a referenced name.
    public private(set) var overflowed: UInt64 = 0
    /// Names that took the place of an unreferenced one.
    public private(set) var reused: UInt64 = 0

    /// The largest ``capacity`` (an ID's place has ``placeBits`` bits): 2²⁰ − 1.
    public static var maximumCapacity: Int { (1 << Int(placeBits)) - 1 }

    /// - Parameter capacity: names held at most, 1 ... ``maximumCapacity``.
    public init(capacity: Int = 65_536) {
        precondition(capacity > 0 && capacity <= Self.maximumCapacity, "NameTable capacity must be in 1..<2^20")
        self.capacity = capacity
        ids.reserveCapacity(min(capacity, 4096))
    }

    /// The ID of the name with `hash`, or interns `make()` under it. 0 when every place holds
    /// a referenced name or `make` returns nil.
    @inlinable
    public func intern(hash: UInt64, _ make: () -> String?) -> ID {
        if hash == 0 { return 0 }
        if let id = ids[hash] { return id }
        return insert(hash: hash, make)
    }

    @usableFromInline @inline(never)
    func insert(hash: UInt64, _ make: () -> String?) -> ID {
        let place: Int
        if names.count <= capacity {
            place = names.count
        } else if let free = takeUnreferenced() {
            place = free
        } else {
            overflowed &+= 1
            return 0
        }
        guard let name = make() else {
            if place < names.count { requeue(place) }
            return 0
        }
        if place == names.count {
            names.append(name)
            hashes.append(hash)
            current.append(ID(place))
            references.append(0)
            queued.append(false)
        } else {
            ids[hashes[place]] = nil
            reused &+= 1
            let uses = (current[place] >> Self.placeBits &+ 1) & 0xfff
            names[place] = name
            hashes[place] = hash
            current[place] = uses << Self.placeBits | ID(place)
        }
        let id = current[place]
        ids[hash] = id
        return id
    }

    /// A tracked flow holds `id` (0 is ignored).
    @inlinable
    public func retain(_ id: ID) {
        guard let place = place(of: id) else { return }
        references[place] &+= 1
    }

    /// A flow that held `id` ended (0 is ignored): once no flow holds it, its place may be
    /// given to a new name when the table is full.
    public func release(_ id: ID) {
        guard let place = place(of: id), references[place] > 0 else { return }
        references[place] &-= 1
        if references[place] == 0 && !queued[place] {
            queued[place] = true
            unreferenced.append(place)
        }
    }

    /// The oldest place whose name no flow holds, if any.
    func takeUnreferenced() -> Int? {
        defer { compactQueue() }
        while unreferencedHead < unreferenced.count {
            let place = unreferenced[unreferencedHead]
            unreferencedHead += 1
            queued[place] = false
            if references[place] == 0 { return place }
            // Held again since it was queued: its next release queues it again.
        }
        return nil
    }

    /// Puts back a place taken by ``takeUnreferenced()`` but not used, at the front.
    func requeue(_ place: Int) {
        queued[place] = true
        unreferenced.insert(place, at: unreferencedHead)
    }

    /// Drops the consumed front of the queue once it is half of the storage.
    func compactQueue() {
        if unreferencedHead > 64 && unreferencedHead * 2 >= unreferenced.count {
            unreferenced.removeFirst(unreferencedHead)
            unreferencedHead = 0
        }
    }

    /// The place of a current ID; nil for 0 and for IDs whose place was reused since.
    @inlinable
    func place(of id: ID) -> Int? {
        let place = Int(id & (1 << Self.placeBits &- 1))
        guard place > 0, place < current.count, current[place] == id else { return nil }
        return place
    }

    /// The text of `id`: "" for 0, an unknown ID, or one whose place a later name took.
    public subscript(id: ID) -> String {
        guard let place = place(of: id) else { return "" }
        return names[place]
    }

    /// Names held.
    public var count: Int { names.count - 1 }

    /// How many tracked flows hold `id` (0 for an ID that names nothing).
    public func references(of id: ID) -> Int {
        guard let place = place(of: id) else { return 0 }
        return Int(references[place])
    }
}
