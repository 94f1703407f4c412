// A scripted HTTPS API server for client tests: NIO HTTP/1.1 over NIOSSL with the fixtures'
// throwaway PKI, on 127.0.0.1:0. It records every request and answers with what the test's
// script returns: a whole body, or a chunked stream that can finish, be cut, or hang.
import Foundation
@testable import K8sMeta
@testable import K8sMetaClient
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// What the client sent.
struct RecordedRequest: Sendable {
    var method: String
    var path: String
    var query: [String: String]
    var authorization: String?
    var userAgent: String?
    /// DER of the client certificate presented in the TLS handshake.
    var clientCertificateDER: [UInt8]?
    var isWatch: Bool { query["watch"] == "1" }
}

/// How the server answers one request.
enum Reply: Sendable {
    enum StreamEnd: Sendable {
        /// The terminating zero-length chunk (the server ending a watch).
        case finish
        /// Close the connection without finishing the chunked body.
        case cut
        /// Keep the stream open until the client goes away.
        case hang
    }
    case body(status: Int, contentType: String, bytes: [UInt8], headers: [(String, String)])
    /// 200, `Transfer-Encoding: chunked`, one chunk per element (written 1 ms apart).
    case stream(chunks: [[UInt8]], end: StreamEnd)

    /// A fixture file as a body.
    static func fixture(_ path: String, status: Int = 200, headers: [(String, String)] = []) -> Reply {
        let bytes = (try? [UInt8](Data(contentsOf: fixtures.appendingPathComponent(path)))) ?? []
        let type = path.hasSuffix(".txt") ? "text/plain; charset=utf-8" : "application/json"
        return .body(status: status, contentType: type, bytes: bytes, headers: headers)
    }

    /// Lines of an ndjson fixture (each keeps its `\n`).
    static func lines(_ path: String) -> [[UInt8]] {
        let bytes = (try? [UInt8](Data(contentsOf: fixtures.appendingPathComponent(path)))) ?? []
        return bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).map { Array($0) + [0x0a] }
    }

    /// Watch events, each split into two chunks in the middle so the client must buffer a
    /// partial line across reads.
    static func watch(_ events: [[UInt8]], end: StreamEnd) -> Reply {
        .stream(chunks: events.flatMap { e in [Array(e[..<(e.count / 2)]), Array(e[(e.count / 2)...])] }, end: end)
    }
}

final class TestAPIServer: Sendable {
    typealias Script = @Sendable (_ request: RecordedRequest, _ index: Int) -> Reply

    final class State: Sendable {
        let script: Script
        let recorded = Mutex<[RecordedRequest]>([])
        let children = Mutex<[any Channel]>([])
        init(script: @escaping Script) { self.script = script }
        func record(_ request: RecordedRequest) -> Reply {
            let index = recorded.withLock {
                $0.append(request)
                return $0.count - 1
            }
            return script(request, index)
        }
    }

    let state: State
    let channel: any Channel
    let port: Int

    /// Every request so far, in arrival order.
    var requests: [RecordedRequest] { state.recorded.withLock { $0 } }
    /// The address it listens on, bracketed for IPv6.
    let host: String
    var url: String { "https://\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    private init(state: State, channel: any Channel, host: String) {
        self.host = host
        self.state = state
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
    }

    /// - Parameter requireClientCertificate: ask for a client certificate and verify it with tls/ca.crt.
    static func start(requireClientCertificate: Bool = false, host: String = "127.0.0.1", script: @escaping Script) async throws -> TestAPIServer {
        let tlsDir = fixtures.appendingPathComponent("tls")
        let chain = try NIOSSLCertificate.fromPEMBytes([UInt8](Data(contentsOf: tlsDir.appendingPathComponent("server.crt"))))
        let key = try NIOSSLPrivateKey(
            bytes: [UInt8](Data(contentsOf: tlsDir.appendingPathComponent("server.key"))), format: .pem)
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.shutdownTimeout = .milliseconds(50)
        if requireClientCertificate {
            tls.certificateVerification = .noHostnameVerification
            tls.trustRoots = .certificates(
                try NIOSSLCertificate.fromPEMBytes([UInt8](Data(contentsOf: tlsDir.appendingPathComponent("ca.crt")))))
        }
        let sslContext = try NIOSSLContext(configuration: tls)
        let state = State(script: script)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                state.children.withLock { $0.append(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(state: state))
                }
            }
            .bind(host: host, port: 0).get()
        return TestAPIServer(state: state, channel: channel, host: host)
    }

    func shutdown() async {
        for child in state.children.withLock({ $0 }) { try? await child.close() }
        try? await channel.close()
    }

    /// A configuration trusting tls/ca.crt with a bearer token.
    func configuration(token: String? = "FAKE-test-token-1234567890") throws -> KubeConfiguration {
        KubeConfiguration(
            server: url,
            certificateAuthorityPEM: [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("tls/ca.crt"))),
            bearerToken: token, source: "test")
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let state: State
        var head: HTTPRequestHead?
        init(state: State) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body: break
            case .end:
                guard let head else { return }
                self.head = nil
                let components = URLComponents(string: head.uri)
                var query: [String: String] = [:]
                for item in components?.queryItems ?? [] { query[item.name] = item.value ?? "" }
                let cert = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate?
                    .toDERBytes()
                let request = RecordedRequest(
                    method: "\(head.method)", path: components?.path ?? head.uri, query: query,
                    authorization: head.headers.first(name: "Authorization"),
                    userAgent: head.headers.first(name: "User-Agent"), clientCertificateDER: cert)
                respond(context: context, reply: state.record(request))
            }
        }

        func respond(context: ChannelHandlerContext, reply: Reply) {
            switch reply {
            case .body(let status, let contentType, let bytes, let extra):
                var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", String(bytes.count))])
                for (n, v) in extra { headers.add(name: n, value: v) }
                context.write(
                    wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: headers))),
                    promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: bytes)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            case .stream(let chunks, let end):
                let headers = HTTPHeaders([("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")])
                context.writeAndFlush(
                    wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                writeChunks(context: context, chunks: chunks[...], end: end)
            }
        }

        func writeChunks(context: ChannelHandlerContext, chunks: ArraySlice<[UInt8]>, end: Reply.StreamEnd) {
            guard let first = chunks.first else {
                switch end {
                case .finish: context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                case .cut: context.close(promise: nil)
                case .hang: break
                }
                return
            }
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: first)))), promise: nil)
            let rest = chunks.dropFirst()
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(1)) {
                guard context.channel.isActive else { return }
                self.writeChunks(context: context, chunks: rest, end: end)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

/// A port nothing listens on (bound, then closed).
func closedPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress?.port ?? 1
    try await channel.close()
    return port
}

/// Polls `condition` every 10 ms for up to `seconds`.
/// Polls `condition` until it holds or `seconds` pass. The limit is generous on purpose: under
/// `swift test`'s parallel run other suites can hold both cooperative threads for seconds
/// (seen in CI: 10 s was not enough), and a condition that holds returns at once anyway.
func waitUntil(_ seconds: Double = 90, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// Runs an informer in a task and records what it delivers.
final class InformerRun<R: KubeResource>: Sendable {
    let informer: Informer<R>
    final class Log: Sendable {
        let events = Mutex<[WatchEvent<R>]>([])
    }
    let log = Log()
    private let runTask: Task<Void, Never>
    private let consumeTask: Task<Void, Never>

    init(_ informer: Informer<R>) {
        self.informer = informer
        runTask = Task { await informer.run() }
        let log = self.log
        consumeTask = Task {
            for await event in informer.events { log.events.withLock { $0.append(event) } }
        }
    }

    var delivered: [WatchEvent<R>] { log.events.withLock { $0 } }

    /// Cancels the informer and waits for it and its stream to finish.
    func stop() async {
        runTask.cancel()
        await runTask.value
        await consumeTask.value
    }
}

/// "ADDED ns/name rv", "BOOKMARK rv", "REPLACED n rv": comparable summaries of events.
func summary<R: KubeResource>(_ event: WatchEvent<R>) -> String {
    func id(_ o: R) -> String {
        "\(o.metadata.namespace.map { "\($0)/" } ?? "")\(o.metadata.name) \(o.metadata.resourceVersion ?? "")"
    }
    switch event {
    case .added(let o): return "ADDED \(id(o))"
    case .modified(let o): return "MODIFIED \(id(o))"
    case .deleted(let o): return "DELETED \(id(o))"
    case .bookmark(let rv): return "BOOKMARK \(rv)"
    case .replaced(let all, let rv): return "REPLACED \(all.count) \(rv)"
    }
}

/// The same summaries computed independently from an ndjson line with JSONSerialization.
func summary(ndjsonLine: [UInt8]) -> String {
    guard let object = try? JSONSerialization.jsonObject(with: Data(ndjsonLine)) as? [String: Any],
        let type = object["type"] as? String, let body = object["object"] as? [String: Any],
        let meta = body["metadata"] as? [String: Any]
    else { return "unparseable" }
    let rv = meta["resourceVersion"] as? String ?? ""
    if type == "BOOKMARK" { return "BOOKMARK \(rv)" }
    let ns = (meta["namespace"] as? String).map { "\($0)/" } ?? ""
    return "\(type) \(ns)\(meta["name"] as? String ?? "") \(rv)"
}

/// The DER of the first certificate in a PEM file.
func certificateDER(pem: Data) throws -> [UInt8]? {
    try NIOSSLCertificate.fromPEMBytes([UInt8](pem)).first?.toDERBytes()
}
