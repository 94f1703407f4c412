import CaptureCore
import Foundation
import K8sMeta

/// The recorded watch scenario (k8s-fixtures/watch/scenario), decoded by hand: the lists taken
/// before the watches, every watch event with the time it arrived, and the step times.
struct ScenarioReplay {
    /// One event of one of the four watches, ready to apply.
    struct Event {
        var arrival: Timestamp
        var apply: (inout ClusterIndex, Timestamp) -> Void
        var summary: String
    }

    struct Step {
        var number: Int?
        var time: Timestamp
        var description: String
    }

    static let directory = fixtures.appendingPathComponent("watch/scenario")

    var listTime: Timestamp
    var lists: [(inout ClusterIndex, Timestamp) -> Void] = []
    var events: [Event] = []
    var steps: [Step] = []

    /// The scenario decoded from the recorded files.
    init() throws {
        try self.init(
            delivered: try Self.recorded("pods"), try Self.recorded("services"),
            try Self.recorded("endpointslices"), try Self.recorded("nodes"))
    }

    /// The scenario as informers delivered it: for each resource, the initial list
    /// (`.replaced`) and then the watch events, which must be the recorded ones in order; each
    /// gets its recorded arrival time.
    init(
        delivered pods: [WatchEvent<Pod>], _ services: [WatchEvent<Service>],
        _ slices: [WatchEvent<EndpointSlice>], _ nodes: [WatchEvent<Node>]
    ) throws {
        steps = try Self.tsv("steps.tsv").map { row in
            Step(number: Int(row[1]), time: try Self.time(row[0]), description: row[3])
        }
        guard let listed = steps.first(where: { $0.description.hasPrefix("lists recorded") }) else {
            throw FixtureError("steps.tsv has no 'lists recorded' line")
        }
        listTime = listed.time
        try take(pods, "pods") { index, e, t in index.apply(e, at: t) }
        try take(services, "services") { index, e, t in index.apply(e, at: t) }
        try take(slices, "endpointslices") { index, e, t in index.apply(e, at: t) }
        try take(nodes, "nodes") { index, e, t in index.apply(e, at: t) }
        events.sort { $0.arrival < $1.arrival }
    }

    /// What an informer would deliver for `name`, read from the files: the list taken before
    /// the watch as `.replaced`, then every event of the recorded watch stream.
    static func recorded<R: KubeResource>(_ name: String) throws -> [WatchEvent<R>] {
        let list = try JSONDecoder().decode(
            ListWithVersion<R>.self, from: Data(contentsOf: directory.appendingPathComponent("\(name).list-before.json")))
        var delivered: [WatchEvent<R>] = [.replaced(list.items, resourceVersion: list.metadata.resourceVersion)]
        let lines = try String(contentsOf: directory.appendingPathComponent("\(name).watch.ndjson"), encoding: .utf8)
            .split(separator: "\n")
        for line in lines {
            let data = Data(line.utf8)
            let type = try JSONDecoder().decode(EventType.self, from: data).type
            switch type {
            case "BOOKMARK":
                let version = try JSONDecoder().decode(EventObject<Bookmark>.self, from: data).object.metadata.resourceVersion
                delivered.append(.bookmark(resourceVersion: version))
            case "ADDED": delivered.append(.added(try JSONDecoder().decode(EventObject<R>.self, from: data).object))
            case "MODIFIED": delivered.append(.modified(try JSONDecoder().decode(EventObject<R>.self, from: data).object))
            case "DELETED": delivered.append(.deleted(try JSONDecoder().decode(EventObject<R>.self, from: data).object))
            default: throw FixtureError("\(name): unexpected event type \(type)")
            }
        }
        return delivered
    }

    mutating func take<R: KubeResource>(
        _ delivered: [WatchEvent<R>], _ name: String, apply: @escaping (inout ClusterIndex, WatchEvent<R>, Timestamp) -> Void
    ) throws {
        guard case .replaced(let objects, let version)? = delivered.first else {
            throw FixtureError("\(name): the informer did not start with its list")
        }
        lists.append { index, t in apply(&index, .replaced(objects, resourceVersion: version), t) }
        let arrivals = try Self.tsv("\(name).watch.arrivals.tsv")
        let watched = delivered.dropFirst()
        guard watched.count == arrivals.count else {
            throw FixtureError("\(name): \(watched.count) events delivered, \(arrivals.count) recorded")
        }
        for (event, row) in zip(watched, arrivals) {
            let (type, version): (String, String?)
            switch event {
            case .added(let o): (type, version) = ("ADDED", o.metadata.resourceVersion)
            case .modified(let o): (type, version) = ("MODIFIED", o.metadata.resourceVersion)
            case .deleted(let o): (type, version) = ("DELETED", o.metadata.resourceVersion)
            case .bookmark(let v): (type, version) = ("BOOKMARK", v)
            case .replaced: (type, version) = ("REPLACED", nil)
            }
            guard type == row[1], version == row[4] else {
                throw FixtureError("\(name): delivered \(type) \(version ?? "-"), recorded \(row[1]) \(row[4])")
            }
            events.append(Event(
                arrival: try Self.time(row[0]), apply: { index, t in apply(&index, event, t) },
                summary: "\(row[1]) \(row[2]) \(row[3]) \(row[4])"))
        }
    }

    /// An index holding the lists, applied at the time they were taken.
    func initialIndex(_ configuration: ClusterIndex.Configuration) -> ClusterIndex {
        var index = ClusterIndex(configuration: configuration)
        for apply in lists { apply(&index, listTime) }
        return index
    }

    /// The start time of step `n` (1…21); `n == 22` is the "scenario finished" line.
    func time(ofStep n: Int) -> Timestamp {
        if n == 22 { return steps.first { $0.description == "scenario finished" }?.time ?? .zero }
        return steps.first { $0.number == n }?.time ?? .zero
    }

    static func tsv(_ name: String) throws -> [[String]] {
        let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        return text.split(separator: "\n").dropFirst().map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    }

    /// "2026-11-21T11:13:03.043Z" → nanoseconds since the epoch, exactly.
    static func time(_ text: String) throws -> Timestamp {
        let parts = text.split(separator: ".")
        let formatter = ISO8601DateFormatter()
        guard parts.count == 2, let date = formatter.date(from: parts[0] + "Z"),
            let ms = UInt64(parts[1].dropLast()), parts[1].hasSuffix("Z")
        else { throw FixtureError("bad time \(text)") }
        return Timestamp(seconds: UInt64(date.timeIntervalSince1970), nanoseconds: ms * 1_000_000)
    }

    struct EventType: Decodable { var type: String }
    /// A BOOKMARK event's object: only its resourceVersion matters.
    struct Bookmark: Decodable {
        struct Meta: Decodable { var resourceVersion: String }
        var metadata: Meta
    }
    struct EventObject<R: Decodable>: Decodable { var object: R }
    struct ListWithVersion<R: Decodable>: Decodable {
        struct Meta: Decodable { var resourceVersion: String }
        var metadata: Meta
        var items: [R]
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Timestamp {
    /// `self` plus `milliseconds`.
    func adding(milliseconds: UInt64) -> Timestamp { Timestamp(nanoseconds: nanoseconds + milliseconds * 1_000_000) }
}
