public import CaptureCore

/// The identities of a flow's two ends, in the flow key's order (``FlowKey/a``, ``FlowKey/b``).
/// 64 bytes of IDs; render them with the ``ClusterIndex`` that produced them.
public struct FlowIdentities: Sendable, Hashable {
    public var a: EndpointIdentity
    public var b: EndpointIdentity

    @inlinable public init(a: EndpointIdentity, b: EndpointIdentity) {
        self.a = a
        self.b = b
    }

    /// The end that opened the flow (``FlowRecord/clientSide``).
    @inlinable public func client(of flow: FlowRecord) -> EndpointIdentity { flow.clientSide == 0 ? a : b }
    /// The other end.
    @inlinable public func server(of flow: FlowRecord) -> EndpointIdentity { flow.clientSide == 0 ? b : a }
}

/// A flow record with its ends named.
public struct EnrichedFlow: Sendable {
    public var record: FlowRecord
    public var identities: FlowIdentities

    @inlinable public init(record: FlowRecord, identities: FlowIdentities) {
        self.record = record
        self.identities = identities
    }

    /// The client end's identity.
    @inlinable public var client: EndpointIdentity { identities.client(of: record) }
    /// The server end's identity.
    @inlinable public var server: EndpointIdentity { identities.server(of: record) }
}

/// Names both ends of flow records from a ``ClusterIndex`` (a snapshot; swap it with
/// ``index`` when the cluster changed).
///
/// Each end is looked up with its own port (to pick out hostNetwork pods) at the flow's first
/// packet; an end no object held then is looked up again at the last packet (an informer
/// reports a new pod's IP a few milliseconds after its first packets may have flowed).
/// Allocation-free per flow.
public struct Enricher: Sendable {
    public var index: ClusterIndex

    public init(index: ClusterIndex) { self.index = index }

    /// Both ends' identities.
    public func identities(of flow: FlowRecord) -> FlowIdentities {
        let key = flow.key
        let hasPorts = key.protocolNumber == 6 || key.protocolNumber == 17 || key.protocolNumber == 132
        return FlowIdentities(
            a: lookup(key.a, port: hasPorts ? key.portA : 0, flow),
            b: lookup(key.b, port: hasPorts ? key.portB : 0, flow))
    }

    /// The record with both ends named.
    public func enrich(_ flow: FlowRecord) -> EnrichedFlow {
        EnrichedFlow(record: flow, identities: identities(of: flow))
    }

    func lookup(_ address: IPAddress, port: UInt16, _ flow: FlowRecord) -> EndpointIdentity {
        let first = index.identity(of: address, port: port, at: flow.firstSeen)
        if !first.kind.isExternal { return first }
        let last = index.identity(of: address, port: port, at: flow.lastSeen)
        return last.kind.isExternal ? first : last
    }
}
