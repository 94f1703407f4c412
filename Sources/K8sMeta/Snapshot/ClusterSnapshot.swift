public import Foundation
import CaptureCore
import Yams

/// A saved cluster state: what `kubectl get pods,services,endpointslices,nodes,replicasets,deployments -A -o json`
/// (or `-o yaml`) writes — a `kind: List` whose items carry their own `kind` — so flows can be
/// named with no cluster at hand. API list responses (`kind: PodList`, items without `kind`)
/// and single objects load too. Items of kinds the index does not use are counted and skipped.
public struct ClusterSnapshot: Sendable {
    public var pods: [Pod] = []
    public var services: [Service] = []
    public var endpointSlices: [EndpointSlice] = []
    public var nodes: [Node] = []
    public var replicaSets: [ReplicaSet] = []
    public var deployments: [Deployment] = []
    public var statefulSets: [StatefulSet] = []
    public var daemonSets: [DaemonSet] = []
    public var jobs: [Job] = []
    /// Items skipped, by kind ("ConfigMap": 3).
    public var skipped: [String: Int] = [:]

    public init() {}

    /// Decodes kubectl's JSON output.
    /// - Throws: ``SnapshotError`` naming what could not be read and where.
    public init(json data: Data) throws {
        do {
            self = try JSONDecoder().decode(Document.self, from: data).snapshot
        } catch let error as SnapshotError {
            throw error
        } catch {
            throw SnapshotError(reason: Self.describe(error))
        }
    }

    /// Decodes kubectl's YAML output (one document).
    /// - Throws: ``SnapshotError``.
    public init(yaml text: String) throws {
        do {
            self = try YAMLDecoder().decode(Document.self, from: text).snapshot
        } catch let error as SnapshotError {
            throw error
        } catch {
            throw SnapshotError(reason: Self.describe(error))
        }
    }

    /// Reads a JSON or YAML snapshot file (JSON when its first non-blank character is `{`).
    /// - Throws: ``SnapshotError`` naming the file.
    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw SnapshotError(file: url.path, reason: "cannot read the file (\(error.localizedDescription))")
        }
        let first = data.first { !(UInt8(ascii: " ") == $0 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }
        do {
            if first == UInt8(ascii: "{") {
                try self.init(json: data)
            } else {
                guard let text = String(data: data, encoding: .utf8) else {
                    throw SnapshotError(reason: "neither JSON nor UTF-8 YAML")
                }
                try self.init(yaml: text)
            }
        } catch var error as SnapshotError {
            error.file = url.path
            throw error
        }
    }

    /// Objects, all kinds.
    public var count: Int {
        pods.count + services.count + endpointSlices.count + nodes.count + replicaSets.count + deployments.count
            + statefulSets.count + daemonSets.count + jobs.count
    }

    /// Applies everything to `index` as valid for all time (a relist at time 0): every address
    /// names its holder for flows of any date.
    public func apply(to index: inout ClusterIndex) {
        let t = Timestamp.zero
        index.apply(WatchEvent<ReplicaSet>.replaced(replicaSets, resourceVersion: ""), at: t)
        index.apply(WatchEvent<Deployment>.replaced(deployments, resourceVersion: ""), at: t)
        index.apply(WatchEvent<StatefulSet>.replaced(statefulSets, resourceVersion: ""), at: t)
        index.apply(WatchEvent<DaemonSet>.replaced(daemonSets, resourceVersion: ""), at: t)
        index.apply(WatchEvent<Job>.replaced(jobs, resourceVersion: ""), at: t)
        index.apply(WatchEvent<Node>.replaced(nodes, resourceVersion: ""), at: t)
        index.apply(WatchEvent<Service>.replaced(services, resourceVersion: ""), at: t)
        index.apply(WatchEvent<EndpointSlice>.replaced(endpointSlices, resourceVersion: ""), at: t)
        index.apply(WatchEvent<Pod>.replaced(pods, resourceVersion: ""), at: t)
    }

    /// A new index holding this snapshot (see ``apply(to:)``).
    public func index(configuration: ClusterIndex.Configuration = .init()) -> ClusterIndex {
        var index = ClusterIndex(configuration: configuration)
        apply(to: &index)
        return index
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? DecodingError {
            func path(_ c: [any CodingKey]) -> String {
                c.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            }
            switch e {
            case .keyNotFound(let key, let context):
                return "missing field \(path(context.codingPath)).\(key.stringValue)"
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
                return "\(context.debugDescription) at \(path(context.codingPath).isEmpty ? "the top level" : path(context.codingPath))"
            @unknown default:
                return "\(e)"
            }
        }
        return "\(error)"
    }

    /// The top level: a List (or `XList`) with items, or one object.
    struct Document: Decodable {
        var snapshot = ClusterSnapshot()

        enum Keys: String, CodingKey { case kind, items }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            let kind = try c.decodeIfPresent(String.self, forKey: .kind)
            guard c.contains(.items) else {
                snapshot.add(try Item(from: decoder))
                return
            }
            // API lists ("PodList") have items without a kind of their own.
            switch kind {
            case "PodList": snapshot.pods = try c.decode([Pod].self, forKey: .items)
            case "ServiceList": snapshot.services = try c.decode([Service].self, forKey: .items)
            case "EndpointSliceList": snapshot.endpointSlices = try c.decode([EndpointSlice].self, forKey: .items)
            case "NodeList": snapshot.nodes = try c.decode([Node].self, forKey: .items)
            case "ReplicaSetList": snapshot.replicaSets = try c.decode([ReplicaSet].self, forKey: .items)
            case "DeploymentList": snapshot.deployments = try c.decode([Deployment].self, forKey: .items)
            case "StatefulSetList": snapshot.statefulSets = try c.decode([StatefulSet].self, forKey: .items)
            case "DaemonSetList": snapshot.daemonSets = try c.decode([DaemonSet].self, forKey: .items)
            case "JobList": snapshot.jobs = try c.decode([Job].self, forKey: .items)
            default:
                var items = try c.nestedUnkeyedContainer(forKey: .items)
                while !items.isAtEnd { snapshot.add(try items.decode(Item.self)) }
            }
        }
    }

    /// One item of a `kind: List`, decoded as the type its own `kind` names.
    struct Item: Decodable {
        var kind: String
        var object: (any KubeResource)?

        enum Keys: String, CodingKey { case kind }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            kind = try c.decodeIfPresent(String.self, forKey: .kind) ?? "(no kind)"
            switch kind {
            case "Pod": object = try Pod(from: decoder)
            case "Service": object = try Service(from: decoder)
            case "EndpointSlice": object = try EndpointSlice(from: decoder)
            case "Node": object = try Node(from: decoder)
            case "ReplicaSet": object = try ReplicaSet(from: decoder)
            case "Deployment": object = try Deployment(from: decoder)
            case "StatefulSet": object = try StatefulSet(from: decoder)
            case "DaemonSet": object = try DaemonSet(from: decoder)
            case "Job": object = try Job(from: decoder)
            default: object = nil
            }
        }
    }

    mutating func add(_ item: Item) {
        switch item.object {
        case let o as Pod: pods.append(o)
        case let o as Service: services.append(o)
        case let o as EndpointSlice: endpointSlices.append(o)
        case let o as Node: nodes.append(o)
        case let o as ReplicaSet: replicaSets.append(o)
        case let o as Deployment: deployments.append(o)
        case let o as StatefulSet: statefulSets.append(o)
        case let o as DaemonSet: daemonSets.append(o)
        case let o as Job: jobs.append(o)
        default: skipped[item.kind, default: 0] += 1
        }
    }
}

/// A snapshot that cannot be read.
public struct SnapshotError: Error, Sendable, CustomStringConvertible {
    /// The file, when read from one.
    public var file: String?
    public var reason: String

    public init(file: String? = nil, reason: String) {
        self.file = file
        self.reason = reason
    }

    public var description: String {
        if let file { return "cluster snapshot \(file): \(reason)" }
        return "cluster snapshot: \(reason)"
    }
}
