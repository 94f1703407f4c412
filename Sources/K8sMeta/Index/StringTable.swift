/// Interned strings: each distinct string is stored once and named by a `UInt32` ID, so
/// identities are small value types and lookups never allocate a `String`.
///
/// ID 0 is the empty string ("none"). IDs are never reused; the table only grows (names of
/// namespaces, workloads, nodes and pods repeat, so it stays small next to the pods).
public struct StringTable: Sendable {
    /// An interned string's ID (0 = empty / none).
    public typealias ID = UInt32

    private var strings: [String] = [""]
    private var ids: [String: ID] = ["": 0]

    public init() {}

    /// The ID of `string`, adding it when new.
    public mutating func intern(_ string: String) -> ID {
        if let id = ids[string] { return id }
        let id = ID(truncatingIfNeeded: strings.count)
        strings.append(string)
        ids[string] = id
        return id
    }

    /// The ID of `string` if it was interned, without adding it.
    public func id(of string: String) -> ID? { ids[string] }

    /// The string of `id` ("" for 0 or an ID this table never gave out).
    public subscript(id: ID) -> String {
        Int(id) < strings.count ? strings[Int(id)] : ""
    }

    /// Strings held, including the empty one.
    public var count: Int { strings.count }
}
