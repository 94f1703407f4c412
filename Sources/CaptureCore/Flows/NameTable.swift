/// Interned names (DNS query names, TLS server names, ALPN protocols) for flow records.
///
/// Flows keep a 32-bit ``ID``; the text is stored once per distinct name. Lookup by the
/// decoder's case-insensitive hash allocates nothing; only a name seen for the first time
/// allocates its `String`. Bounded: once ``capacity`` names are held, new names get ID 0
/// and are counted in ``overflowed``. Used from the tracker's thread only.
public final class NameTable {
    public typealias ID = UInt32
    public let capacity: Int
    @usableFromInline var ids: [UInt64: ID] = [:]
    @usableFromInline var names: [String] = [""]
    /// Names that could not be interned because the table was full.
    public private(set) var overflowed: UInt64 = 0

    public init(capacity: Int = 65_536) {
        self.capacity = capacity
        ids.reserveCapacity(min(capacity, 4096))
    }

    /// The ID of the name with `hash`, or interns `make()` under it. 0 when the table is full
    /// or `make` returns nil.
    @inlinable
    public func intern(hash: UInt64, _ make: () -> String?) -> ID {
        if hash == 0 { return 0 }
        if let id = ids[hash] { return id }
        return insert(hash: hash, make)
    }

    @usableFromInline @inline(never)
    func insert(hash: UInt64, _ make: () -> String?) -> ID {
        guard names.count <= capacity else {
            overflowed &+= 1
            return 0
        }
        guard let name = make() else { return 0 }
        let id = ID(names.count)
        names.append(name)
        ids[hash] = id
        return id
    }

    /// The text of `id` ("" for 0 or an unknown ID).
    public subscript(id: ID) -> String {
        Int(id) < names.count ? names[Int(id)] : ""
    }

    public var count: Int { names.count - 1 }
}
