public import K8sMeta
// Errors from the API server, worded so a user can act on them: a 403 names the RBAC rule to add.

/// A `kind: Status` object: what the API server returns for errors and in watch ERROR events.
public struct KubeStatus: Sendable, Hashable, Decodable {
    public var status: String?
    public var message: String?
    public var reason: String?
    public var code: Int?
    public var details: Details?
    public var metadata: Metadata?

    public struct Details: Sendable, Hashable, Decodable {
        public var name: String?
        public var group: String?
        public var kind: String?
        public var retryAfterSeconds: Int?
    }
    public struct Metadata: Sendable, Hashable, Decodable {
        /// A fresh continue token that a 410 on an expired `continue` may carry.
        public var `continue`: String?
    }

    /// A Status with the fields errors are built from.
    public init(status: String? = nil, message: String? = nil, reason: String? = nil, code: Int? = nil) {
        self.status = status
        self.message = message
        self.reason = reason
        self.code = code
    }
}

/// A request the API server refused (HTTP status other than 200, or a watch `ERROR` event).
public struct KubeAPIError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status (or the `code` of an in-stream watch ERROR event).
    public var statusCode: Int
    /// "list" or "watch".
    public var verb: String
    public var resource: ResourceKind
    /// nil: all namespaces (or a cluster-scoped resource).
    public var namespace: String?
    /// The decoded Status body, when the server sent JSON.
    public var status: KubeStatus?
    /// The start of a non-Status body (e.g. `404 page not found`).
    public var bodyExcerpt: String?
    /// True when the error arrived as a watch ERROR event inside an HTTP 200 stream.
    public var inWatchStream: Bool
    /// From the `Retry-After` header or `details.retryAfterSeconds`.
    public var retryAfterSeconds: Int?

    /// An error for `verb` on `resource` (in `namespace`, or cluster-wide when nil).
    public init(
        statusCode: Int, verb: String, resource: ResourceKind, namespace: String?, status: KubeStatus? = nil,
        bodyExcerpt: String? = nil, inWatchStream: Bool = false, retryAfterSeconds: Int? = nil
    ) {
        self.statusCode = statusCode
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        self.status = status
        self.bodyExcerpt = bodyExcerpt
        self.inWatchStream = inWatchStream
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// 410 Gone / Expired: the resourceVersion or continue token is too old; list again.
    public var isGone: Bool { statusCode == 410 }
    public var isUnauthorized: Bool { statusCode == 401 }
    public var isForbidden: Bool { statusCode == 403 }

    /// The RBAC rule a Role/ClusterRole needs for this request, in manifest syntax.
    public var missingRule: String {
        "apiGroups: [\"\(resource.group)\"], resources: [\"\(resource.plural)\"], verbs: [\"\(verb)\"]"
    }

    private var scope: String { namespace.map { "in namespace \($0)" } ?? "in all namespaces (cluster scope)" }

    public var description: String {
        let server = status?.message ?? bodyExcerpt ?? ""
        let said = server.isEmpty ? "" : " Server said: \(server)"
        let target = "\(verb) \(resource) \(scope)"
        switch statusCode {
        case 401:
            return
                "401 Unauthorized: cannot \(target): the API server rejected the credentials (token expired, revoked or for another cluster?).\(said)"
        case 403:
            let binding =
                namespace == nil
                ? "a ClusterRole bound with a ClusterRoleBinding"
                : "a Role/ClusterRole bound with a RoleBinding in namespace \(namespace ?? "")"
            return
                "403 Forbidden: cannot \(target). Missing RBAC rule: \(missingRule) (grant it via \(binding)).\(said)"
        case 404:
            return "404 Not Found: \(target): the API server does not serve \(resource.path(namespace: namespace)).\(said)"
        case 410:
            return "410 Gone: \(target): the resourceVersion or continue token is too old; a relist is needed.\(said)"
        default:
            let reason = status?.reason.map { " \($0)" } ?? ""
            let where_ = inWatchStream ? " (ERROR event in the watch stream)" : ""
            return "\(statusCode)\(reason): \(target)\(where_).\(said)"
        }
    }

    /// Removes every secret from the server text this error carries.
    func redacting(_ secrets: [String]) -> KubeAPIError {
        guard !secrets.isEmpty else { return self }
        var copy = self
        func scrub(_ s: String?) -> String? {
            guard var s else { return nil }
            for secret in secrets where !secret.isEmpty { s = s.replacingOccurrences(of: secret, with: "<redacted>") }
            return s
        }
        copy.status?.message = scrub(status?.message)
        copy.bodyExcerpt = scrub(bodyExcerpt)
        return copy
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
