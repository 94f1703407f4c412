// Where the API server is and how to authenticate to it: in-cluster (service-account mount) or
// from a kubeconfig file, with the path rules client-go uses.
public import Foundation
import Yams

/// How to reach and authenticate to one Kubernetes API server.
///
/// Secrets (tokens, client keys) are kept here but never printed: ``description`` names only
/// which kinds of credentials are configured.
public struct KubeConfiguration: Sendable, CustomStringConvertible, CustomReflectable {
    /// `https://host:port`, IPv6 hosts bracketed.
    public var server: String
    /// The default namespace (context namespace, the service account's namespace, or "default").
    public var namespace: String
    /// PEM bundle of trusted CAs; nil uses the system roots (or nothing, with ``insecureSkipTLSVerify``).
    public var certificateAuthorityPEM: [UInt8]?
    /// Skip server certificate verification (`insecure-skip-tls-verify`).
    public var insecureSkipTLSVerify: Bool
    /// Name to verify the server certificate against instead of the URL's host (`tls-server-name`).
    public var tlsServerName: String?
    /// A fixed bearer token (`token`).
    public var bearerToken: String?
    /// A file holding the bearer token, re-read when it changes (`tokenFile`, projected SA tokens).
    public var tokenFile: String?
    /// PEM client certificate chain (`client-certificate` / `client-certificate-data`).
    public var clientCertificatePEM: [UInt8]?
    /// PEM client private key (`client-key` / `client-key-data`).
    public var clientKeyPEM: [UInt8]?
    /// A `client.authentication.k8s.io/v1` credential plugin.
    public var exec: ExecPlugin?
    /// Where this came from ("in-cluster", "kubeconfig /path (context x)").
    public var source: String

    /// A configuration from explicit values (see ``inCluster(environment:serviceAccountDirectory:)``
    /// and ``kubeconfig(at:context:)`` for the usual sources).
    public init(
        server: String, namespace: String = "default", certificateAuthorityPEM: [UInt8]? = nil,
        insecureSkipTLSVerify: Bool = false, tlsServerName: String? = nil, bearerToken: String? = nil,
        tokenFile: String? = nil, clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: [UInt8]? = nil,
        exec: ExecPlugin? = nil, source: String = "explicit"
    ) {
        self.server = server
        self.namespace = namespace
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.tlsServerName = tlsServerName
        self.bearerToken = bearerToken
        self.tokenFile = tokenFile
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.exec = exec
        self.source = source
    }

    /// Names the server, namespace and kinds of credentials; never a token or key.
    public var description: String {
        var auth: [String] = []
        if let bearerToken { auth.append("bearer token (\(bearerToken.utf8.count) bytes, redacted)") }
        if let tokenFile { auth.append("token file \(tokenFile)") }
        if clientCertificatePEM != nil { auth.append("client certificate") }
        if let exec { auth.append("exec plugin \(exec.command)") }
        if auth.isEmpty { auth.append("anonymous") }
        var tls = insecureSkipTLSVerify ? "insecure-skip-tls-verify" : (certificateAuthorityPEM != nil ? "custom CA" : "system CAs")
        if let tlsServerName { tls += ", server name \(tlsServerName)" }
        return "KubeConfiguration(\(server), namespace \(namespace), \(tls), auth: \(auth.joined(separator: ", ")), from \(source))"
    }

    /// What `dump` and debuggers show: ``description``, so no secret leaks through reflection.
    public var customMirror: Mirror { Mirror(self, children: ["description": description], displayStyle: .struct) }
}

/// A `client.authentication.k8s.io/v1` exec credential plugin (kubeconfig `user.exec`).
public struct ExecPlugin: Sendable, Hashable {
    public var apiVersion: String
    /// As written in the kubeconfig.
    public var command: String
    public var args: [String]
    /// Extra environment variables for the plugin, in order.
    public var env: [EnvVar]
    /// Shown when the command cannot be found.
    public var installHint: String?
    /// Pass the cluster (server, CA, tls-server-name) to the plugin in `KUBERNETES_EXEC_INFO`.
    public var provideClusterInfo: Bool
    public var interactiveMode: String?
    /// The kubeconfig's directory: a command with a path separator is resolved against it.
    public var baseDirectory: String?

    public struct EnvVar: Sendable, Hashable, Decodable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// A plugin as a kubeconfig's `user.exec` describes it.
    public init(
        apiVersion: String = "client.authentication.k8s.io/v1", command: String, args: [String] = [],
        env: [EnvVar] = [], installHint: String? = nil, provideClusterInfo: Bool = false,
        interactiveMode: String? = nil, baseDirectory: String? = nil
    ) {
        self.apiVersion = apiVersion
        self.command = command
        self.args = args
        self.env = env
        self.installHint = installHint
        self.provideClusterInfo = provideClusterInfo
        self.interactiveMode = interactiveMode
        self.baseDirectory = baseDirectory
    }
}

/// Why a configuration could not be loaded or credentials could not be obtained.
public struct KubeConfigurationError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// KUBERNETES_SERVICE_HOST/PORT are not set: not running in a pod.
        case notInCluster
        case fileUnreadable
        case invalidKubeconfig
        case contextNotFound
        case clusterNotFound
        case userNotFound
        case execPluginNotFound
        case execPluginFailed
        case invalidCredentials
    }
    public var code: Code
    /// What went wrong, naming files, contexts and commands (never secrets).
    public var detail: String

    /// - Parameters:
    ///   - code: the kind of failure.
    ///   - detail: the message shown to the user; must not contain secrets.
    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { detail }
}

// MARK: - In-cluster

extension KubeConfiguration {
    /// The service-account mount every pod gets.
    public static let defaultServiceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The configuration of a pod: the API server from `KUBERNETES_SERVICE_HOST`/`_PORT`, the
    /// service account's token (re-read when the kubelet rotates it), CA and namespace.
    /// - Parameters:
    ///   - environment: the process environment (injectable for tests).
    ///   - serviceAccountDirectory: the directory holding `token`, `ca.crt`, `namespace`.
    /// - Throws: ``KubeConfigurationError`` with `.notInCluster` when the variables are missing, or
    ///   `.fileUnreadable` when the token cannot be read.
    public static func inCluster(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        serviceAccountDirectory: String = defaultServiceAccountDirectory
    ) throws(KubeConfigurationError) -> KubeConfiguration {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
            let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty
        else {
            throw KubeConfigurationError(
                .notInCluster, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (not running in a pod?)")
        }
        let hostPart = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let dir = URL(fileURLWithPath: serviceAccountDirectory)
        let tokenPath = dir.appendingPathComponent("token").path
        guard FileManager.default.isReadableFile(atPath: tokenPath) else {
            throw KubeConfigurationError(.fileUnreadable, "service account token \(tokenPath) is not readable")
        }
        let ca = try? Data(contentsOf: dir.appendingPathComponent("ca.crt"))
        let namespace = (try? String(contentsOf: dir.appendingPathComponent("namespace"), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return KubeConfiguration(
            server: "https://\(hostPart):\(port)",
            namespace: (namespace?.isEmpty ?? true) ? "default" : namespace ?? "default",
            certificateAuthorityPEM: ca.map { [UInt8]($0) },
            tokenFile: tokenPath,
            source: "in-cluster (\(serviceAccountDirectory))"
        )
    }
}

// MARK: - kubeconfig

extension KubeConfiguration {
    /// The kubeconfig kubectl would use: the first existing file of `KUBECONFIG` (colon-separated;
    /// files are not merged), else `~/.kube/config`; nil when none exists.
    public static func defaultKubeconfigPath(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String? {
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            for path in list.split(separator: ":").map(String.init) where FileManager.default.fileExists(atPath: path) {
                return path
            }
            return nil
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        let path = URL(fileURLWithPath: home).appendingPathComponent(".kube/config").path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// Loads a kubeconfig file. Relative `certificate-authority`, `client-certificate`,
    /// `client-key` and `tokenFile` paths resolve against the file's directory, as in client-go.
    /// - Parameters:
    ///   - path: the kubeconfig file.
    ///   - context: a context name; nil uses `current-context`.
    /// - Throws: ``KubeConfigurationError`` naming the file, context, cluster or user at fault.
    public static func kubeconfig(at path: String, context: String? = nil) throws(KubeConfigurationError)
        -> KubeConfiguration
    {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw KubeConfigurationError(.fileUnreadable, "cannot read kubeconfig \(path): \(error.localizedDescription)")
        }
        let baseDirectory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try kubeconfig(yaml: text, context: context, baseDirectory: baseDirectory, source: path)
    }

    /// Parses kubeconfig YAML (see ``kubeconfig(at:context:)``); `baseDirectory` anchors relative paths.
    public static func kubeconfig(
        yaml: String, context: String? = nil, baseDirectory: String, source: String = "kubeconfig"
    ) throws(KubeConfigurationError) -> KubeConfiguration {
        let file: KubeconfigFile
        do { file = try YAMLDecoder().decode(KubeconfigFile.self, from: yaml) } catch {
            throw KubeConfigurationError(.invalidKubeconfig, "kubeconfig \(source) is not valid: \(error)")
        }
        guard let contextName = context ?? file.currentContext, !contextName.isEmpty else {
            throw KubeConfigurationError(.contextNotFound, "kubeconfig \(source) has no current-context; name a context")
        }
        guard let ctx = file.contexts?.first(where: { $0.name == contextName })?.context else {
            let known = (file.contexts ?? []).map(\.name).joined(separator: ", ")
            throw KubeConfigurationError(
                .contextNotFound, "context \"\(contextName)\" not found in kubeconfig \(source) (contexts: \(known))")
        }
        guard let cluster = file.clusters?.first(where: { $0.name == ctx.cluster })?.cluster else {
            throw KubeConfigurationError(
                .clusterNotFound, "cluster \"\(ctx.cluster)\" of context \"\(contextName)\" not found in \(source)")
        }
        let user: KubeconfigFile.User
        if let name = ctx.user, !name.isEmpty {
            guard let found = file.users?.first(where: { $0.name == name })?.user else {
                throw KubeConfigurationError(
                    .userNotFound, "user \"\(name)\" of context \"\(contextName)\" not found in \(source)")
            }
            user = found
        } else {
            user = KubeconfigFile.User()
        }
        func resolve(_ p: String) -> String {
            p.hasPrefix("/") ? p : URL(fileURLWithPath: baseDirectory).appendingPathComponent(p).standardized.path
        }
        func pem(data: String?, file: String?, what: String) throws(KubeConfigurationError) -> [UInt8]? {
            if let data, !data.isEmpty {
                guard let decoded = Data(base64Encoded: data, options: .ignoreUnknownCharacters) else {
                    throw KubeConfigurationError(.invalidCredentials, "\(what)-data in \(source) is not base64")
                }
                return [UInt8](decoded)
            }
            if let file, !file.isEmpty {
                let p = resolve(file)
                do { return [UInt8](try Data(contentsOf: URL(fileURLWithPath: p))) } catch {
                    throw KubeConfigurationError(.fileUnreadable, "cannot read \(what) \(p) (from \(source))")
                }
            }
            return nil
        }
        let exec = user.exec.map { e in
            ExecPlugin(
                apiVersion: e.apiVersion ?? "client.authentication.k8s.io/v1", command: e.command, args: e.args ?? [],
                env: e.env ?? [], installHint: e.installHint, provideClusterInfo: e.provideClusterInfo ?? false,
                interactiveMode: e.interactiveMode, baseDirectory: baseDirectory)
        }
        return KubeConfiguration(
            server: cluster.server,
            namespace: (ctx.namespace?.isEmpty ?? true) ? "default" : ctx.namespace ?? "default",
            certificateAuthorityPEM: try pem(
                data: cluster.certificateAuthorityData, file: cluster.certificateAuthority, what: "certificate-authority"),
            insecureSkipTLSVerify: cluster.insecureSkipTLSVerify ?? false,
            tlsServerName: cluster.tlsServerName,
            bearerToken: user.token,
            tokenFile: user.tokenFile.map(resolve),
            clientCertificatePEM: try pem(
                data: user.clientCertificateData, file: user.clientCertificate, what: "client-certificate"),
            clientKeyPEM: try pem(data: user.clientKeyData, file: user.clientKey, what: "client-key"),
            exec: exec,
            source: "kubeconfig \(source) (context \(contextName))"
        )
    }

    /// The context names a kubeconfig defines, in file order (reads no referenced files).
    public static func contextNames(inKubeconfigAt path: String) throws(KubeConfigurationError) -> [String] {
        do {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            return (try YAMLDecoder().decode(KubeconfigFile.self, from: text).contexts ?? []).map(\.name)
        } catch {
            throw KubeConfigurationError(.invalidKubeconfig, "cannot read kubeconfig \(path): \(error)")
        }
    }
}

/// The parts of a kubeconfig (`kind: Config`) PodTap reads.
struct KubeconfigFile: Decodable {
    var clusters: [Named<Cluster>]?
    var users: [NamedUser]?
    var contexts: [NamedContext]?
    var currentContext: String?

    enum CodingKeys: String, CodingKey {
        case clusters, users, contexts
        case currentContext = "current-context"
    }

    struct Named<T: Decodable>: Decodable {
        var name: String
        var cluster: T
    }
    struct NamedUser: Decodable {
        var name: String
        var user: User?
    }
    struct NamedContext: Decodable {
        var name: String
        var context: Context
    }
    struct Cluster: Decodable {
        var server: String
        var certificateAuthority: String?
        var certificateAuthorityData: String?
        var insecureSkipTLSVerify: Bool?
        var tlsServerName: String?
        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
            case tlsServerName = "tls-server-name"
        }
    }
    struct User: Decodable {
        var token: String?
        var tokenFile: String?
        var clientCertificate: String?
        var clientCertificateData: String?
        var clientKey: String?
        var clientKeyData: String?
        var exec: Exec?
        enum CodingKeys: String, CodingKey {
            case token, tokenFile, exec
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
        }
        init() {}
    }
    struct Exec: Decodable {
        var apiVersion: String?
        var command: String
        var args: [String]?
        var env: [ExecPlugin.EnvVar]?
        var installHint: String?
        var provideClusterInfo: Bool?
        var interactiveMode: String?
    }
    struct Context: Decodable {
        var cluster: String
        var user: String?
        var namespace: String?
    }
}
