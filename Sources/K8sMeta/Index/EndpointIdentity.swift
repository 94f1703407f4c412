/// What one end of a flow is, as far as the cluster knows.
public enum EndpointKind: UInt8, Sendable, Hashable, CustomStringConvertible {
    /// Not looked up (the zero identity).
    case unknown = 0
    /// A pod with its own IP.
    case pod
    /// A hostNetwork pod picked out of its node's IP by a port it declares.
    case hostNetworkPod
    /// A node (one of its addresses, or a hostNetwork pod's IP without a matching port).
    case node
    /// A Service ClusterIP.
    case service
    /// Not a known object, inside a configured cluster range (pod or service CIDR).
    case cluster
    /// Not a known object, outside every cluster range.
    case world

    /// "pod", "hostnetwork-pod", "node", "service", "cluster", "world", "unknown".
    public var name: StaticString {
        switch self {
        case .unknown: "unknown"
        case .pod: "pod"
        case .hostNetworkPod: "hostnetwork-pod"
        case .node: "node"
        case .service: "service"
        case .cluster: "cluster"
        case .world: "world"
        }
    }

    public var description: String { name.description }

    /// True for pods (own IP or hostNetwork).
    @inlinable public var isPod: Bool { self == .pod || self == .hostNetworkPod }
    /// True for ``cluster`` and ``world``: no object names this address.
    @inlinable public var isExternal: Bool { self == .cluster || self == .world }
}

/// One flow end's identity: a 32-byte value of IDs into the index's ``StringTable``.
///
/// Which fields are set depends on ``kind``:
///
/// | kind | namespace/name | workload | node | service |
/// | --- | --- | --- | --- | --- |
/// | pod, hostNetworkPod | the pod | top-level owner (Deployment, CronJob, StatefulSet, DaemonSet, Job, ReplicaSet, or the controller reference) | the pod's node | first Service whose EndpointSlices list the pod |
/// | node | 0 / the node | – | the node | – |
/// | service | the Service | – | – | the Service itself |
/// | cluster, world | – | – | – | – |
///
/// Render the IDs with ``ClusterIndex/strings`` or ``IdentityRenderer``; the value itself
/// never allocates.
public struct EndpointIdentity: Sendable, Hashable {
    public var kind: EndpointKind
    public var namespace: StringTable.ID
    public var name: StringTable.ID
    /// Kind of the top-level owner ("Deployment", "CronJob" …), 0 when the pod has none.
    public var workloadKind: StringTable.ID
    public var workloadName: StringTable.ID
    public var node: StringTable.ID
    public var serviceNamespace: StringTable.ID
    public var serviceName: StringTable.ID

    @inlinable
    public init(
        kind: EndpointKind, namespace: StringTable.ID = 0, name: StringTable.ID = 0,
        workloadKind: StringTable.ID = 0, workloadName: StringTable.ID = 0, node: StringTable.ID = 0,
        serviceNamespace: StringTable.ID = 0, serviceName: StringTable.ID = 0
    ) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.workloadKind = workloadKind
        self.workloadName = workloadName
        self.node = node
        self.serviceNamespace = serviceNamespace
        self.serviceName = serviceName
    }

    /// The zero identity (kind ``EndpointKind/unknown``).
    @inlinable public static var unknown: EndpointIdentity { EndpointIdentity(kind: .unknown) }
    /// An address no object names, inside a cluster range.
    @inlinable public static var cluster: EndpointIdentity { EndpointIdentity(kind: .cluster) }
    /// An address outside every cluster range.
    @inlinable public static var world: EndpointIdentity { EndpointIdentity(kind: .world) }
}
