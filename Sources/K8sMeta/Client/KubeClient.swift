// List and watch requests against the API server over HTTPS (async-http-client on NIO), with
// the configuration's CA, client certificate, bearer token and server name.
public import K8sMeta
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// One page of a LIST response.
public struct ListPage<Resource: KubeResource>: Sendable {
    public var items: [Resource]
    /// The collection's resourceVersion (all pages share the first page's).
    public var resourceVersion: String
    /// Pass back to get the next page; nil on the last page.
    public var continueToken: String?
    public var remainingItemCount: Int?
}

/// A Kubernetes API client for the read-only requests PodTap makes: paginated LIST and
/// streaming WATCH of the ``ResourceKind``s, decoding only the fields the index needs.
///
/// Call ``shutdown()`` before releasing it.
public final class KubeClient: Sendable {
    /// Timeouts and limits.
    public struct Options: Sendable {
        /// TCP + TLS connect timeout.
        public var connectTimeout: Duration
        /// Whole-request limit for LISTs.
        public var listTimeout: Duration
        /// Added to a watch's `timeoutSeconds` before the client gives up on it.
        public var watchGrace: Duration
        /// Largest LIST body / single watch event accepted.
        public var maximumBodyBytes: Int
        public init(
            connectTimeout: Duration = .seconds(10), listTimeout: Duration = .seconds(120),
            watchGrace: Duration = .seconds(30), maximumBodyBytes: Int = 512 << 20
        ) {
            self.connectTimeout = connectTimeout
            self.listTimeout = listTimeout
            self.watchGrace = watchGrace
            self.maximumBodyBytes = maximumBodyBytes
        }
    }

    public let configuration: KubeConfiguration
    public let options: Options
    let credentials: CredentialSource
    private let http: HTTPClient
    /// `scheme://host:port/prefix` requests are sent to (the tls-server-name host when set).
    private let baseURL: String
    private let tlsCache = Mutex<(key: ResolvedCredentials, tls: TLSConfiguration)?>(nil)

    /// - Throws: ``KubeConfigurationError`` `.invalidKubeconfig` when the server URL is unusable.
    public init(configuration: KubeConfiguration, options: Options = Options()) throws {
        self.configuration = configuration
        self.options = options
        self.credentials = CredentialSource(configuration: configuration)
        guard var components = URLComponents(string: configuration.server), let scheme = components.scheme,
            scheme == "https" || scheme == "http", var host = components.host, !host.isEmpty
        else {
            throw KubeConfigurationError(.invalidKubeconfig, "server \(configuration.server) is not an http(s) URL")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var http = HTTPClient.Configuration()
        http.timeout = .init(connect: options.connectTimeout.timeAmount, read: nil)
        http.redirectConfiguration = .disallow
        http.httpVersion = .http1Only
        if let serverName = configuration.tlsServerName, !serverName.isEmpty {
            // Connect to the real host but verify (and send SNI for) the configured name.
            http.dnsOverride = [serverName: host]
            components.host = serverName
        }
        self.http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: http)
        var base = components.string ?? configuration.server
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
    }

    /// Closes connections. Requests in flight fail.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    // MARK: LIST

    /// One LIST request.
    /// - Parameters:
    ///   - namespace: nil lists across all namespaces.
    ///   - fieldSelector: e.g. `spec.nodeName=node-1`.
    ///   - limit: page size; pass the returned ``ListPage/continueToken`` to get the next page.
    /// - Throws: ``KubeAPIError`` for any status but 200; transport errors as thrown by the HTTP client.
    public func list<R: KubeResource>(
        _ type: R.Type = R.self, namespace: String? = nil, fieldSelector: String? = nil, labelSelector: String? = nil,
        limit: Int? = nil, continue continueToken: String? = nil
    ) async throws -> ListPage<R> {
        var query: [(String, String)] = []
        if let limit { query.append(("limit", String(limit))) }
        if let continueToken { query.append(("continue", continueToken)) }
        if let fieldSelector { query.append(("fieldSelector", fieldSelector)) }
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        let response = try await send(
            R.kind, namespace: namespace, verb: "list", query: query,
            deadline: .now() + options.listTimeout.timeAmount)
        let body = try await response.body.collect(upTo: options.maximumBodyBytes)
        let decoded = try JSONDecoder().decode(ListResponse<R>.self, from: Data(body.readableBytesView))
        return ListPage(
            items: decoded.items ?? [], resourceVersion: decoded.metadata?.resourceVersion ?? "",
            continueToken: (decoded.metadata?.continue).flatMap { $0.isEmpty ? nil : $0 },
            remainingItemCount: decoded.metadata?.remainingItemCount)
    }

    // MARK: WATCH

    /// One WATCH request, read incrementally: each complete newline-terminated event is decoded
    /// and handed to `onEvent` as it arrives. Returns when the server ends the stream (normally
    /// after `timeoutSeconds`); bytes after the last newline are dropped, so a connection cut
    /// in the middle of an event never delivers half of it (the read throws instead).
    /// - Parameters:
    ///   - resourceVersion: start after this version (from a LIST or the last event/bookmark).
    ///   - onEvent: `.added`, `.modified`, `.deleted` or `.bookmark`, in server order.
    /// - Returns: how many events were delivered.
    /// - Throws: ``KubeAPIError`` for a non-200 status or an in-stream ERROR event (410 Expired:
    ///   relist); decoding errors; transport errors (disconnects).
    @discardableResult
    public func watch<R: KubeResource>(
        _ type: R.Type = R.self, namespace: String? = nil, fieldSelector: String? = nil, resourceVersion: String,
        timeoutSeconds: Int = 300, onEvent: (WatchEvent<R>) async throws -> Void
    ) async throws -> Int {
        var query: [(String, String)] = [("watch", "1"), ("allowWatchBookmarks", "true")]
        if !resourceVersion.isEmpty { query.append(("resourceVersion", resourceVersion)) }
        query.append(("timeoutSeconds", String(timeoutSeconds)))
        if let fieldSelector { query.append(("fieldSelector", fieldSelector)) }
        let response = try await send(
            R.kind, namespace: namespace, verb: "watch", query: query,
            deadline: .now() + (Duration.seconds(timeoutSeconds) + options.watchGrace).timeAmount)
        let decoder = JSONDecoder()
        var lines = LineSplitter(maximumLineBytes: options.maximumBodyBytes)
        var delivered = 0
        for try await var chunk in response.body {
            guard lines.append(&chunk) else {
                throw KubeAPIError(
                    statusCode: 413, verb: "watch", resource: R.kind, namespace: namespace,
                    bodyExcerpt: "a watch event exceeded \(options.maximumBodyBytes) bytes")
            }
            while let line = lines.next() {
                if line.readableBytesView.allSatisfy({ $0 == 0x20 || $0 == 0x0d || $0 == 0x09 }) { continue }
                let envelope = try decoder.decode(WatchEnvelope<R>.self, from: Data(line.readableBytesView))
                switch envelope.payload {
                case .added(let o): try await onEvent(.added(o))
                case .modified(let o): try await onEvent(.modified(o))
                case .deleted(let o): try await onEvent(.deleted(o))
                case .bookmark(let rv): try await onEvent(.bookmark(resourceVersion: rv))
                case .error(let status):
                    throw KubeAPIError(
                        statusCode: status.code ?? 500, verb: "watch", resource: R.kind, namespace: namespace,
                        status: status, inWatchStream: true, retryAfterSeconds: status.details?.retryAfterSeconds
                    ).redacting(credentials.knownSecrets)
                case .unknown: continue
                }
                delivered += 1
            }
        }
        // Bytes after the last newline are an incomplete event: dropped, never decoded.
        return delivered
    }

    // MARK: Requests

    /// `?a=b&c=d`, each value percent-encoded (only RFC 3986 unreserved characters stay).
    static func encodeQuery(_ items: [(String, String)]) -> String {
        guard !items.isEmpty else { return "" }
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return "?"
            + items.map { key, value in
                "\(key)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)"
            }.joined(separator: "&")
    }

    private func send(
        _ kind: ResourceKind, namespace: String?, verb: String, query: [(String, String)], deadline: NIODeadline
    ) async throws -> HTTPClientResponse {
        let creds = try await credentials.current()
        var request = HTTPClientRequest(url: baseURL + kind.path(namespace: namespace) + Self.encodeQuery(query))
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "podtap-k8smeta/0.1")
        if let token = creds.bearerToken, !token.isEmpty {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        if baseURL.hasPrefix("https") { request.tlsConfiguration = try tlsConfiguration(for: creds) }
        let response = try await http.execute(request, deadline: deadline)
        guard response.status == .ok else {
            let body = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
            let bytes = Data(body.readableBytesView)
            let status = try? JSONDecoder().decode(KubeStatus.self, from: bytes)
            var excerpt: String?
            if status == nil || status?.message == nil {
                let text = String(decoding: bytes.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                excerpt = text.isEmpty ? nil : text
            }
            let retryAfter = response.headers.first(name: "Retry-After").flatMap { Int($0) }
                ?? status?.details?.retryAfterSeconds
            if response.status.code == 401 { credentials.invalidate() }
            throw KubeAPIError(
                statusCode: Int(response.status.code), verb: verb, resource: kind, namespace: namespace,
                status: (status?.message != nil || status?.code != nil) ? status : nil, bodyExcerpt: excerpt,
                retryAfterSeconds: retryAfter
            ).redacting(credentials.knownSecrets + [creds.bearerToken].compactMap { $0 })
        }
        return response
    }

    private func tlsConfiguration(for creds: ResolvedCredentials) throws -> TLSConfiguration {
        if let cached = tlsCache.withLock({ $0 }), cached.key == creds { return cached.tls }
        var tls = TLSConfiguration.makeClientConfiguration()
        // How long a closing connection waits for the server's close_notify (default 5 s), so
        // stopping an informer mid-watch does not stall shutdown.
        tls.shutdownTimeout = .milliseconds(200)
        if configuration.insecureSkipTLSVerify {
            tls.certificateVerification = .none
        } else if let ca = configuration.certificateAuthorityPEM {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
            } catch {
                throw KubeConfigurationError(.invalidCredentials, "certificate authority is not valid PEM: \(error)")
            }
        }
        if let cert = creds.clientCertificatePEM, let key = creds.clientKeyPEM {
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(cert).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
            } catch {
                // The key's bytes are secret: describe the failure without them.
                throw KubeConfigurationError(.invalidCredentials, "client certificate or key is not valid PEM")
            }
        }
        tlsCache.withLock { $0 = (creds, tls) }
        return tls
    }
}

extension Duration {
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        return .nanoseconds(seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000)
    }
}

/// Splits a byte stream into `\n`-terminated lines, buffering a partial line across chunks.
struct LineSplitter {
    private var pending = ByteBuffer()
    let maximumLineBytes: Int

    init(maximumLineBytes: Int) { self.maximumLineBytes = maximumLineBytes }

    /// Adds a chunk. Returns false when an unterminated line grew beyond `maximumLineBytes`.
    mutating func append(_ chunk: inout ByteBuffer) -> Bool {
        pending.discardReadBytes()
        pending.writeBuffer(&chunk)
        return pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) != nil
            || pending.readableBytes <= maximumLineBytes
    }

    /// The next complete line without its `\n`, or nil until more bytes arrive.
    mutating func next() -> ByteBuffer? {
        guard let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = pending.readSlice(length: newline - pending.readerIndex)
        pending.moveReaderIndex(forwardBy: 1)
        return line
    }

    /// Bytes of an unfinished line.
    var pendingBytes: Int { pending.readableBytes }
}

/// `{"metadata": {...}, "items": [...]}`.
struct ListResponse<R: KubeResource>: Decodable {
    struct Meta: Decodable {
        var resourceVersion: String?
        var `continue`: String?
        var remainingItemCount: Int?
    }
    var metadata: Meta?
    var items: [R]?
}

/// One line of a watch stream: `{"type": "...", "object": {...}}`, decoded in one pass.
struct WatchEnvelope<R: KubeResource>: Decodable {
    enum Payload {
        case added(R), modified(R), deleted(R)
        case bookmark(String)
        case error(KubeStatus)
        case unknown
    }
    var payload: Payload

    private enum Keys: String, CodingKey { case type, object }
    private struct BookmarkObject: Decodable {
        struct Meta: Decodable { var resourceVersion: String? }
        var metadata: Meta?
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        switch try c.decode(String.self, forKey: .type) {
        case "ADDED": payload = .added(try c.decode(R.self, forKey: .object))
        case "MODIFIED": payload = .modified(try c.decode(R.self, forKey: .object))
        case "DELETED": payload = .deleted(try c.decode(R.self, forKey: .object))
        case "BOOKMARK":
            payload = .bookmark(try c.decode(BookmarkObject.self, forKey: .object).metadata?.resourceVersion ?? "")
        case "ERROR": payload = .error(try c.decode(KubeStatus.self, forKey: .object))
        default: payload = .unknown
        }
    }
}
