// The Kubernetes objects PodTap reads, decoded with only the fields the index needs: names,
// owners, addresses, ports. Everything else in the API's JSON (managedFields, container specs,
// conditions...) is skipped by the decoder, so memory stays small at 10,000+ pods.
public import Foundation

/// Which API collection a resource lives in, and how to address it.
public struct ResourceKind: Sendable, Hashable, CustomStringConvertible {
    /// API group; "" for the core group.
    public let group: String
    public let version: String
    /// The plural used in URLs and RBAC rules ("pods", "endpointslices").
    public let plural: String
    /// The `kind` of a single object ("Pod").
    public let kind: String

    public init(group: String, version: String, plural: String, kind: String) {
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
    }

    /// `/api/v1/pods` or `/apis/apps/v1/replicasets` (cluster-wide), or namespaced when `namespace` is set.
    public func path(namespace: String? = nil) -> String {
        let base = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        if let namespace { return "\(base)/namespaces/\(namespace)/\(plural)" }
        return "\(base)/\(plural)"
    }

    public var description: String { group.isEmpty ? plural : "\(plural).\(group)" }

    public static let pods = ResourceKind(group: "", version: "v1", plural: "pods", kind: "Pod")
    public static let services = ResourceKind(group: "", version: "v1", plural: "services", kind: "Service")
    public static let nodes = ResourceKind(group: "", version: "v1", plural: "nodes", kind: "Node")
    public static let endpointSlices = ResourceKind(
        group: "discovery.k8s.io", version: "v1", plural: "endpointslices", kind: "EndpointSlice")
    public static let replicaSets = ResourceKind(group: "apps", version: "v1", plural: "replicasets", kind: "ReplicaSet")
    public static let deployments = ResourceKind(group: "apps", version: "v1", plural: "deployments", kind: "Deployment")
    public static let statefulSets = ResourceKind(group: "apps", version: "v1", plural: "statefulsets", kind: "StatefulSet")
    public static let daemonSets = ResourceKind(group: "apps", version: "v1", plural: "daemonsets", kind: "DaemonSet")
    public static let jobs = ResourceKind(group: "batch", version: "v1", plural: "jobs", kind: "Job")

    /// Every resource the index reads (the read-only RBAC rules cover exactly these).
    public static let all: [ResourceKind] = [
        .pods, .services, .endpointSlices, .nodes, .replicaSets, .deployments, .statefulSets, .daemonSets, .jobs,
    ]
}

/// A controller reference in `metadata.ownerReferences`.
public struct OwnerReference: Sendable, Hashable, Decodable {
    public var kind: String
    public var name: String
    public var uid: String
    public var controller: Bool?

    public init(kind: String, name: String, uid: String, controller: Bool? = nil) {
        self.kind = kind
        self.name = name
        self.uid = uid
        self.controller = controller
    }
}

/// The part of `metadata` the index uses.
public struct ObjectMeta: Sendable, Hashable, Decodable {
    public var name: String
    /// nil for cluster-scoped objects (nodes).
    public var namespace: String?
    public var uid: String
    public var resourceVersion: String?
    public var labels: [String: String]?
    public var ownerReferences: [OwnerReference]?
    /// RFC 3339; set while a pod is terminating.
    public var deletionTimestamp: String?

    public init(
        name: String, namespace: String? = nil, uid: String, resourceVersion: String? = nil,
        labels: [String: String]? = nil, ownerReferences: [OwnerReference]? = nil, deletionTimestamp: String? = nil
    ) {
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.resourceVersion = resourceVersion
        self.labels = labels
        self.ownerReferences = ownerReferences
        self.deletionTimestamp = deletionTimestamp
    }

    /// The owner with `controller: true`, if any.
    public var controller: OwnerReference? { ownerReferences?.first { $0.controller == true } }
}

/// An object of one of the ``ResourceKind``s.
public protocol KubeResource: Sendable, Decodable {
    static var kind: ResourceKind { get }
    var metadata: ObjectMeta { get }
}

public struct Pod: KubeResource, Hashable {
    public static var kind: ResourceKind { .pods }
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: Status

    public struct Spec: Sendable, Hashable, Decodable {
        public var nodeName: String?
        public var hostNetwork: Bool?
        /// Container ports (used to tell hostNetwork pods sharing a node IP apart).
        public var containers: [Container]?
        public init(nodeName: String? = nil, hostNetwork: Bool? = nil, containers: [Container]? = nil) {
            self.nodeName = nodeName
            self.hostNetwork = hostNetwork
            self.containers = containers
        }
    }
    public struct Container: Sendable, Hashable, Decodable {
        public var name: String
        public var ports: [ContainerPort]?
        public init(name: String, ports: [ContainerPort]? = nil) {
            self.name = name
            self.ports = ports
        }
    }
    public struct ContainerPort: Sendable, Hashable, Decodable {
        public var containerPort: Int
        public var hostPort: Int?
        public var `protocol`: String?
        public init(containerPort: Int, hostPort: Int? = nil, protocol: String? = nil) {
            self.containerPort = containerPort
            self.hostPort = hostPort
            self.protocol = `protocol`
        }
    }
    public struct Status: Sendable, Hashable, Decodable {
        public var phase: String?
        public var podIP: String?
        public var podIPs: [PodIP]?
        public var hostIP: String?
        public init(phase: String? = nil, podIP: String? = nil, podIPs: [PodIP]? = nil, hostIP: String? = nil) {
            self.phase = phase
            self.podIP = podIP
            self.podIPs = podIPs
            self.hostIP = hostIP
        }
    }
    public struct PodIP: Sendable, Hashable, Decodable {
        public var ip: String
        public init(ip: String) { self.ip = ip }
    }

    public init(metadata: ObjectMeta, spec: Spec = .init(), status: Status = .init()) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    /// Every IP the pod holds: `status.podIPs`, or `status.podIP` when the list is absent.
    public var ips: [String] {
        if let list = status.podIPs, !list.isEmpty { return list.map(\.ip) }
        if let ip = status.podIP, !ip.isEmpty { return [ip] }
        return []
    }
}

public struct Service: KubeResource, Hashable {
    public static var kind: ResourceKind { .services }
    public var metadata: ObjectMeta
    public var spec: Spec

    public struct Spec: Sendable, Hashable, Decodable {
        /// "None" for headless services.
        public var clusterIP: String?
        public var clusterIPs: [String]?
        public var type: String?
        public var ports: [ServicePort]?
        public var externalIPs: [String]?
        public init(
            clusterIP: String? = nil, clusterIPs: [String]? = nil, type: String? = nil, ports: [ServicePort]? = nil,
            externalIPs: [String]? = nil
        ) {
            self.clusterIP = clusterIP
            self.clusterIPs = clusterIPs
            self.type = type
            self.ports = ports
            self.externalIPs = externalIPs
        }
    }
    public struct ServicePort: Sendable, Hashable, Decodable {
        public var name: String?
        public var `protocol`: String?
        public var port: Int
        public var nodePort: Int?
        public init(name: String? = nil, protocol: String? = nil, port: Int, nodePort: Int? = nil) {
            self.name = name
            self.protocol = `protocol`
            self.port = port
            self.nodePort = nodePort
        }
    }

    public init(metadata: ObjectMeta, spec: Spec = .init()) {
        self.metadata = metadata
        self.spec = spec
    }

    /// The cluster IPs (both families), without "None" or empty strings.
    public var ips: [String] {
        let list = spec.clusterIPs ?? (spec.clusterIP.map { [$0] } ?? [])
        return list.filter { !$0.isEmpty && $0 != "None" }
    }
}

public struct EndpointSlice: KubeResource, Hashable {
    public static var kind: ResourceKind { .endpointSlices }
    public var metadata: ObjectMeta
    public var addressType: String?
    public var endpoints: [Endpoint]?
    public var ports: [EndpointPort]?

    public struct Endpoint: Sendable, Hashable, Decodable {
        public var addresses: [String]
        public var conditions: Conditions?
        public var nodeName: String?
        public var targetRef: ObjectReference?
        public init(
            addresses: [String], conditions: Conditions? = nil, nodeName: String? = nil,
            targetRef: ObjectReference? = nil
        ) {
            self.addresses = addresses
            self.conditions = conditions
            self.nodeName = nodeName
            self.targetRef = targetRef
        }
    }
    public struct Conditions: Sendable, Hashable, Decodable {
        public var ready: Bool?
        public var serving: Bool?
        public var terminating: Bool?
        public init(ready: Bool? = nil, serving: Bool? = nil, terminating: Bool? = nil) {
            self.ready = ready
            self.serving = serving
            self.terminating = terminating
        }
    }
    public struct ObjectReference: Sendable, Hashable, Decodable {
        public var kind: String?
        public var name: String?
        public var namespace: String?
        public var uid: String?
        public init(kind: String? = nil, name: String? = nil, namespace: String? = nil, uid: String? = nil) {
            self.kind = kind
            self.name = name
            self.namespace = namespace
            self.uid = uid
        }
    }
    public struct EndpointPort: Sendable, Hashable, Decodable {
        public var name: String?
        public var `protocol`: String?
        public var port: Int?
        public init(name: String? = nil, protocol: String? = nil, port: Int? = nil) {
            self.name = name
            self.protocol = `protocol`
            self.port = port
        }
    }

    public init(
        metadata: ObjectMeta, addressType: String? = nil, endpoints: [Endpoint]? = nil, ports: [EndpointPort]? = nil
    ) {
        self.metadata = metadata
        self.addressType = addressType
        self.endpoints = endpoints
        self.ports = ports
    }

    /// The Service this slice belongs to (label `kubernetes.io/service-name`).
    public var serviceName: String? { metadata.labels?["kubernetes.io/service-name"] }
}

public struct Node: KubeResource, Hashable {
    public static var kind: ResourceKind { .nodes }
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public struct Spec: Sendable, Hashable, Decodable {
        public var podCIDR: String?
        public var podCIDRs: [String]?
        public init(podCIDR: String? = nil, podCIDRs: [String]? = nil) {
            self.podCIDR = podCIDR
            self.podCIDRs = podCIDRs
        }
    }
    public struct Status: Sendable, Hashable, Decodable {
        public var addresses: [Address]?
        public init(addresses: [Address]? = nil) { self.addresses = addresses }
    }
    public struct Address: Sendable, Hashable, Decodable {
        /// InternalIP, ExternalIP, Hostname, InternalDNS, ExternalDNS.
        public var type: String
        public var address: String
        public init(type: String, address: String) {
            self.type = type
            self.address = address
        }
    }

    public init(metadata: ObjectMeta, spec: Spec? = nil, status: Status? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    /// InternalIP and ExternalIP addresses (host names are not IPs).
    public var ips: [String] {
        (status?.addresses ?? []).filter { $0.type == "InternalIP" || $0.type == "ExternalIP" }.map(\.address)
    }
}

/// A workload controller: ReplicaSet, Deployment, StatefulSet, DaemonSet or Job. Only its
/// identity and its own owner matter (ReplicaSet → Deployment, Job → CronJob).
public struct Workload<Marker: WorkloadMarker>: KubeResource, Hashable {
    public static var kind: ResourceKind { Marker.kind }
    public var metadata: ObjectMeta
    public init(metadata: ObjectMeta) { self.metadata = metadata }
}

public protocol WorkloadMarker: Sendable, Hashable { static var kind: ResourceKind { get } }
public enum ReplicaSetMarker: WorkloadMarker { public static var kind: ResourceKind { .replicaSets } }
public enum DeploymentMarker: WorkloadMarker { public static var kind: ResourceKind { .deployments } }
public enum StatefulSetMarker: WorkloadMarker { public static var kind: ResourceKind { .statefulSets } }
public enum DaemonSetMarker: WorkloadMarker { public static var kind: ResourceKind { .daemonSets } }
public enum JobMarker: WorkloadMarker { public static var kind: ResourceKind { .jobs } }

public typealias ReplicaSet = Workload<ReplicaSetMarker>
public typealias Deployment = Workload<DeploymentMarker>
public typealias StatefulSet = Workload<StatefulSetMarker>
public typealias DaemonSet = Workload<DaemonSetMarker>
public typealias Job = Workload<JobMarker>

/// One change an informer delivers, in the order the API server sent it.
public enum WatchEvent<Resource: KubeResource>: Sendable {
    /// The object as listed (initial list or relist) or as added by a watch event.
    case added(Resource)
    case modified(Resource)
    /// The object's last state (its resourceVersion is the deletion's).
    case deleted(Resource)
    /// A relist finished: `objects` is the complete current state; anything known before and
    /// not in it was deleted while the watch was down.
    case replaced([Resource], resourceVersion: String)
    /// A bookmark: nothing changed, the collection is at this resourceVersion.
    case bookmark(resourceVersion: String)
}
