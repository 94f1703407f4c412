public import CaptureCore
#if canImport(Glibc)
internal import Glibc
#endif

/// A pod's interface as the node sees it: the host end of the pod's veth pair (or another link
/// whose peer lives in a pod's network namespace), with what is known of the pod end.
///
/// `ip -d link` in the node namespace shows the pairing as `vethX@ifM … link-netnsid N`: M is
/// ``peerIndex``, N ``peerNamespaceID``; inside the pod the peer shows as `eth0@ifK`, K being
/// ``index``.
public struct PodInterface: Sendable, Hashable, CustomStringConvertible {
    /// Whether the link is administratively up (`IFF_UP`).
    public enum State: String, Sendable, Hashable {
        case up, down
    }

    /// An address with its prefix length, as `ip addr` lists it.
    public struct Address: Sendable, Hashable, CustomStringConvertible {
        public var address: IPAddress
        public var prefixLength: UInt8

        public init(_ address: IPAddress, prefixLength: UInt8) {
            self.address = address
            self.prefixLength = prefixLength
        }

        /// True for IPv6 link-local (fe80::/10) addresses, which name no pod.
        public var isLinkLocal: Bool { !address.isIPv4 && (address.high >> 54) == 0x3FA }

        public var description: String { "\(address)/\(prefixLength)" }
    }

    /// The link's name in the node namespace ("veth3f2a…", "cali…", "lxc…").
    public var name: String
    /// The link's ifindex in the node namespace.
    public var index: Int32
    public var state: State
    /// The driver reports carrier (`IFF_LOWER_UP`); for a veth, the pod end is up too.
    public var hasCarrier: Bool
    /// The link kind (IFLA_INFO_KIND: "veth", "netkit", …); nil when the kernel reports none.
    public var kind: String?
    /// The ifindex of the peer (IFLA_LINK), in the peer's namespace: the pod's `eth0`.
    public var peerIndex: Int32?
    /// The id the node namespace gives the peer's namespace (IFLA_LINK_NETNSID); nil when the
    /// peer is in the node namespace too.
    public var peerNamespaceID: Int32?
    /// A file naming the peer's namespace (`/run/netns/…` or `/proc/PID/ns/net`), when found.
    /// A `/proc` path is valid only while that process lives.
    public var peerNamespacePath: String?
    /// The peer's addresses inside its namespace, IPv4 first; empty until they are known.
    public var peerAddresses: [Address]
    /// The bridge or bond the link is enslaved to (IFLA_MASTER), if any.
    public var masterIndex: Int32?

    public init(
        name: String, index: Int32, state: State, hasCarrier: Bool = false, kind: String? = nil,
        peerIndex: Int32? = nil, peerNamespaceID: Int32? = nil, peerNamespacePath: String? = nil,
        peerAddresses: [Address] = [], masterIndex: Int32? = nil
    ) {
        self.name = name
        self.index = index
        self.state = state
        self.hasCarrier = hasCarrier
        self.kind = kind
        self.peerIndex = peerIndex
        self.peerNamespaceID = peerNamespaceID
        self.peerNamespacePath = peerNamespacePath
        self.peerAddresses = peerAddresses
        self.masterIndex = masterIndex
    }

    init(_ link: RouteNetlink.Link) {
        self.init(
            name: link.name, index: link.index,
            state: link.flags & RouteNetlink.interfaceUp != 0 ? .up : .down,
            hasCarrier: link.flags & RouteNetlink.interfaceLowerUp != 0, kind: link.kind,
            peerIndex: link.peerIndex, peerNamespaceID: link.peerNamespaceID, masterIndex: link.masterIndex)
    }

    /// The peer's addresses that can name a pod (not IPv6 link-local).
    public var podAddresses: [IPAddress] { peerAddresses.filter { !$0.isLinkLocal }.map(\.address) }

    /// `vethX@if2 (index 5, up, veth, peer netnsid 0 at /run/netns/pod: 10.244.1.10/24)`.
    public var description: String {
        var s = name + (peerIndex.map { "@if\($0)" } ?? "") + " (index \(index), \(state.rawValue)"
        if let kind { s += ", \(kind)" }
        if let peerNamespaceID {
            s += ", peer netnsid \(peerNamespaceID)"
            if let peerNamespacePath { s += " at \(peerNamespacePath)" }
            if !peerAddresses.isEmpty { s += ": " + peerAddresses.map(\.description).joined(separator: " ") }
        }
        return s + ")"
    }
}

/// Which links of the node namespace are pod interfaces, the way CNI plugins create them.
///
/// A link is selected when it meets one of the ``criteria`` and is not excluded. Excluded,
/// whatever their name: the loopback, links of an ``excludedKinds`` kind (bridges, tunnels,
/// bonds), links that are another link's master, veths whose peer is gone (being deleted), and
/// names matching ``excludedNamePatterns``.
/// That is how the default pattern `cni*` keeps the bridge plugin's own bridge `cni0` out: it
/// is a `bridge`, and the master of every pod veth.
public struct PodInterfaceSelector: Sendable, Hashable {
    public struct Criteria: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// A veth (IFLA_INFO_KIND "veth") whose peer is in another namespace. A pair with
        /// both ends in the node namespace (Cilium's `cilium_host`/`cilium_net`) is host plumbing.
        public static let veth = Criteria(rawValue: 1)
        /// Any link whose peer is in another namespace (IFLA_LINK_NETNSID present): veth,
        /// netkit, and kinds to come.
        public static let peerInOtherNamespace = Criteria(rawValue: 2)
        /// The name matches one of ``PodInterfaceSelector/namePatterns``.
        public static let namePattern = Criteria(rawValue: 4)
        public static let all: Criteria = [.veth, .peerInOtherNamespace, .namePattern]
    }

    public var criteria: Criteria
    /// Shell globs (`*`, `?`, `[…]`, as fnmatch(3)) matched against link names. The defaults
    /// are the host-side names of the bridge plugin and Flannel (`veth`), Calico (`cali`),
    /// Cilium (`lxc`) and CNI runtimes (`cni`).
    public var namePatterns: [String]
    /// Globs of names never selected.
    public var excludedNamePatterns: [String]
    /// Link kinds never selected: the devices pod traffic is bridged or tunnelled through.
    public var excludedKinds: Set<String>

    public static let defaultNamePatterns = ["veth*", "cali*", "lxc*", "cni*"]
    public static let defaultExcludedKinds: Set<String> = [
        "bridge", "bond", "team", "vrf", "openvswitch", "dummy", "vxlan", "geneve", "ipip", "sit", "gre",
        "gretap", "ip6gre", "ip6tnl", "wireguard",
    ]

    public init(
        criteria: Criteria = .all, namePatterns: [String] = Self.defaultNamePatterns,
        excludedNamePatterns: [String] = [], excludedKinds: Set<String> = Self.defaultExcludedKinds
    ) {
        self.criteria = criteria
        self.namePatterns = namePatterns
        self.excludedNamePatterns = excludedNamePatterns
        self.excludedKinds = excludedKinds
    }

    /// Whether a link is a pod interface; `isMaster`: some link has it as its master.
    func selects(_ link: RouteNetlink.Link, isMaster: Bool) -> Bool {
        if link.flags & RouteNetlink.interfaceLoopback != 0 || isMaster { return false }
        // A live veth always has a peer; one without (IFLA_LINK 0, `vethX@NONE`) is being
        // deleted with its pod's namespace: the kernel sets it down first, and that last
        // notification should read as the removal it is, not as the pod going down.
        if link.kind == "veth", link.peerIndex == nil { return false }
        if let kind = link.kind, excludedKinds.contains(kind) { return false }
        if Self.matches(link.name, excludedNamePatterns) { return false }
        let remotePeer = link.peerNamespaceID != nil
        if criteria.contains(.peerInOtherNamespace), remotePeer { return true }
        if criteria.contains(.veth), remotePeer, link.kind == "veth" { return true }
        return criteria.contains(.namePattern) && Self.matches(link.name, namePatterns)
    }

    static func matches(_ name: String, _ patterns: [String]) -> Bool {
        patterns.contains { unsafe fnmatch($0, name, 0) == 0 }
    }
}
