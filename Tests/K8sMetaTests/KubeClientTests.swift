// The client over real HTTPS against a scripted loopback server serving the recorded responses.
import Foundation
@testable import K8sMeta
@testable import K8sMetaClient
import PodTapTestSupport
import Synchronization
import Testing

private let fastBackoff = Backoff(initial: .milliseconds(5), maximum: .milliseconds(40), jitter: 0.2)
private let token = "FAKE-test-token-1234567890"

/// Runs `body` with a server and a client for it, shutting both down afterwards.
private func withServer(
    requireClientCertificate: Bool = false, configure: (inout KubeConfiguration) throws -> Void = { _ in },
    script: @escaping TestAPIServer.Script, _ body: (TestAPIServer, KubeClient) async throws -> Void
) async throws {
    let server = try await TestAPIServer.start(requireClientCertificate: requireClientCertificate, script: script)
    var config = try server.configuration(token: token)
    try configure(&config)
    let client = try KubeClient(configuration: config)
    do {
        try await body(server, client)
    } catch {
        try? await client.shutdown()
        await server.shutdown()
        throw error
    }
    try await client.shutdown()
    await server.shutdown()
}

/// A kubeconfig of the fixtures, pointed at the test server of `server`'s configuration.
private func fixtureKubeconfig(_ name: String, at server: KubeConfiguration) throws -> KubeConfiguration {
    var configuration = try KubeConfiguration.kubeconfig(at: fixtures.appendingPathComponent("kubeconfigs/\(name)").path)
    configuration.server = server.server
    return configuration
}

/// Runs `informer` until it has failed and retried at least twice, stops it, and returns its
/// health then with the retry's error message (nil, recorded as a failed expectation, if it
/// never got there).
private func healthAfterRetries<R: KubeResource>(_ informer: Informer<R>) async -> (InformerHealth, String?) {
    let run = InformerRun(informer)
    #expect(
        await waitUntil {
            if case .retrying(let attempt, _) = run.informer.health.state { return attempt >= 2 }
            return false
        })
    let health = run.informer.health
    await run.stop()
    guard case .retrying(_, let message) = health.state else { return (health, nil) }
    return (health, message)
}

private func continueToken(ofPage path: String) throws -> String? {
    let object = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent(path)))
    return ((object as? [String: Any])?["metadata"] as? [String: Any])?["continue"] as? String
}

@Suite struct KubeClientTests {
    @Test func plainListSendsTokenAndDecodes() async throws {
        try await withServer(script: { request, _ in
            .fixture(request.path.hasSuffix("replicasets") ? "lists/replicasets.json" : "lists/pods.json")
        }) { server, client in
            let page = try await client.list(Pod.self)
            #expect(page.items.count == 11)
            #expect(page.resourceVersion == "374")
            #expect(page.continueToken == nil)
            let request = try #require(server.requests.first)
            #expect(request.path == "/api/v1/pods")
            #expect(request.authorization == "Bearer \(token)")
            #expect(request.userAgent?.hasPrefix("curl") == false)
            #expect(request.query["watch"] == nil)

            let slices = try await client.list(EndpointSlice.self, namespace: "demo")
            _ = slices
            #expect(server.requests.last?.path == "/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices")
            let replicaSets = try await client.list(ReplicaSet.self)
            #expect(server.requests.last?.path == "/apis/apps/v1/replicasets")
            #expect(replicaSets.items.map(\.metadata.name).sorted().contains("web-qzcnvkfk99"))
            #expect(replicaSets.items.allSatisfy { $0.metadata.controller?.kind == "Deployment" })
        }
    }

    @Test func paginatedListFollowsContinueTokens() async throws {
        let tokens = try (1...3).map { try #require(try continueToken(ofPage: "lists/paginated/pods-limit3-page\($0).json")) }
        try await withServer(script: { request, _ in
            if request.isWatch { return .stream(chunks: [], end: .hang) }
            guard let c = request.query["continue"] else { return .fixture("lists/paginated/pods-limit3-page1.json") }
            guard let page = tokens.firstIndex(of: c) else { return .fixture("lists/paginated/pods-limit3-continue-invalid.400.json", status: 400) }
            return .fixture("lists/paginated/pods-limit3-page\(page + 2).json")
        }) { server, client in
            let run = InformerRun(Informer<Pod>(client: client, options: .init(pageSize: 3, backoff: fastBackoff)))
            #expect(await waitUntil { server.requests.contains(where: \.isWatch) })
            await run.stop()
            let lists = server.requests.filter { !$0.isWatch }
            #expect(lists.map { $0.query["limit"] } == ["3", "3", "3", "3"])
            #expect(lists.map { $0.query["continue"] } == [nil] + tokens.map { Optional($0) })
            #expect(run.delivered.map(summary) == ["REPLACED 11 379"])
            guard case .replaced(let pods, _) = run.delivered.first else { return }
            #expect(Set(pods.map(\.metadata.uid)).count == 11)
            #expect(server.requests.first { $0.isWatch }?.query["resourceVersion"] == "379")
        }
    }

    @Test func watchScenarioDeliversRecordedEventsInOrder() async throws {
        let lines = Reply.lines("watch/scenario/pods.watch.ndjson")
        #expect(lines.count == 18)
        try await withServer(script: { request, _ in
            if !request.isWatch { return .fixture("watch/scenario/pods.list-before.json") }
            return request.query["resourceVersion"] == "404" ? .watch(lines, end: .hang) : .stream(chunks: [], end: .hang)
        }) { server, client in
            let run = InformerRun(Informer<Pod>(client: client, options: .init(watchTimeoutSeconds: 90, backoff: fastBackoff)))
            #expect(await waitUntil { run.delivered.count == lines.count + 1 })
            let expected = ["REPLACED 11 404"] + lines.map { summary(ndjsonLine: $0) }
            #expect(run.delivered.map(summary) == expected)
            let lastBookmark = try #require(lines.map { summary(ndjsonLine: $0) }.last { $0.hasPrefix("BOOKMARK") })
            #expect(run.informer.health.resourceVersion == String(lastBookmark.dropFirst("BOOKMARK ".count)))
            #expect(run.informer.health.state == .synced)
            await run.stop()
            #expect(run.informer.health.state == .stopped)
            let watch = try #require(server.requests.first { $0.isWatch })
            #expect(watch.path == "/api/v1/pods")
            #expect(watch.query["allowWatchBookmarks"] == "true")
            #expect(watch.query["resourceVersion"] == "404")
            #expect(watch.query["timeoutSeconds"] == "90")
            #expect(watch.authorization == "Bearer \(token)")
            #expect(server.requests.filter(\.isWatch).count == 1)
        }
    }

    @Test func inStream410Relists() async throws {
        try await withServer(script: { request, index in
            if !request.isWatch {
                return .fixture(index == 0 ? "watch/scenario/pods.list-before.json" : "watch/scenario/pods.list-after.json")
            }
            if request.query["resourceVersion"] == "404" {
                return .watch(Reply.lines("errors/watch-410-too-old-resourceVersion-404.pods.ndjson"), end: .finish)
            }
            return .stream(chunks: [], end: .hang)
        }) { server, client in
            let run = InformerRun(Informer<Pod>(client: client, options: .init(backoff: fastBackoff)))
            #expect(await waitUntil { server.requests.count >= 4 })
            await run.stop()
            let requests = server.requests
            #expect(requests.map(\.isWatch) == [false, true, false, true])
            #expect(requests[3].query["resourceVersion"] == "456")
            #expect(run.delivered.map(summary) == ["REPLACED 11 404", "REPLACED 12 456"])
            #expect(run.informer.health.lists == 2)
        }
    }

    @Test func expiredContinueTokenRestartsTheList() async throws {
        let tokens = try (1...3).map { try #require(try continueToken(ofPage: "lists/paginated/pods-limit3-page\($0).json")) }
        let expiredOnce = Atomic<Bool>(false)
        try await withServer(script: { request, _ in
            if request.isWatch { return .stream(chunks: [], end: .hang) }
            guard let c = request.query["continue"] else { return .fixture("lists/paginated/pods-limit3-page1.json") }
            if c == tokens[1], !expiredOnce.exchange(true, ordering: .relaxed) {
                return .fixture("lists/paginated/pods-limit3-continue-expired.410.json", status: 410)
            }
            guard let page = tokens.firstIndex(of: c) else { return .fixture("lists/paginated/pods-limit3-continue-invalid.400.json", status: 400) }
            return .fixture("lists/paginated/pods-limit3-page\(page + 2).json")
        }) { server, client in
            let run = InformerRun(Informer<Pod>(client: client, options: .init(pageSize: 3, backoff: fastBackoff)))
            #expect(await waitUntil { server.requests.contains(where: \.isWatch) })
            await run.stop()
            let lists = server.requests.filter { !$0.isWatch }.map { $0.query["continue"] }
            // page1, page2, 410 on page 3's token, then from scratch: page1..page4.
            #expect(lists == [nil, tokens[0], tokens[1], nil, tokens[0], tokens[1], tokens[2]])
            #expect(run.delivered.map(summary) == ["REPLACED 11 379"])
        }
    }

    @Test func serverEndedWatchResumesFromLastResourceVersion() async throws {
        let lines = Reply.lines("watch/scenario/pods.watch.ndjson")
        let watchCount = Atomic<Int>(0)
        try await withServer(script: { request, _ in
            if !request.isWatch { return .fixture("watch/scenario/pods.list-before.json") }
            switch watchCount.add(1, ordering: .relaxed).newValue {
            case 1: return .stream(chunks: [], end: .finish)
            case 2: return .watch(Array(lines[0..<3]), end: .finish)
            default: return .stream(chunks: [], end: .hang)
            }
        }) { server, client in
            let run = InformerRun(Informer<Pod>(client: client, options: .init(backoff: fastBackoff)))
            #expect(await waitUntil { server.requests.filter(\.isWatch).count >= 3 })
            await run.stop()
            let watches = server.requests.filter(\.isWatch)
            let third = summary(ndjsonLine: lines[2])
            #expect(watches.map { $0.query["resourceVersion"] } == ["404", "404", String(third.split(separator: " ").last ?? "")])
            #expect(server.requests.filter { !$0.isWatch }.count == 1)
            #expect(run.delivered.map(summary) == ["REPLACED 11 404"] + lines[0..<3].map { summary(ndjsonLine: $0) })
            #expect(run.informer.health.failures == 0)
        }
    }

    @Test func cutInTheMiddleOfAnEventDeliversNoHalfEvent() async throws {
        let lines = Reply.lines("watch/scenario/pods.watch.ndjson")
        let watchCount = Atomic<Int>(0)
        try await withServer(script: { request, _ in
            if !request.isWatch { return .fixture("watch/scenario/pods.list-before.json") }
            switch watchCount.add(1, ordering: .relaxed).newValue {
            case 1:
                let half = Array(lines[3][..<(lines[3].count / 2)])
                return .stream(chunks: Array(lines[0..<3]) + [half], end: .cut)
            case 2:
                // Resume after the requested RV. (The HTTP client may fail the body stream before handing
                // over every byte that arrived before the cut, so the client can be at 408, 409 or 410.)
                let rv = request.query["resourceVersion"] ?? ""
                let next = (lines.firstIndex { summary(ndjsonLine: $0).hasSuffix(" \(rv)") } ?? -1) + 1
                return .watch(Array(lines[next..<6]), end: .hang)
            default: return .stream(chunks: [], end: .hang)
            }
        }) { server, client in
            let run = InformerRun(Informer<Pod>(client: client, options: .init(backoff: fastBackoff)))
            #expect(await waitUntil { run.delivered.count == 7 })
            await run.stop()
            let watches = server.requests.filter(\.isWatch)
            #expect(watches.count == 2)
            let completeRVs = lines[0..<3].map { String(summary(ndjsonLine: $0).split(separator: " ").last ?? "") }
            #expect(completeRVs.contains(watches.last?.query["resourceVersion"] ?? "none"))
            #expect(run.delivered.map(summary) == ["REPLACED 11 404"] + lines[0..<6].map { summary(ndjsonLine: $0) })
            #expect(run.informer.health.failures == 1)
        }
    }

    @Test(arguments: ["pods", "services", "endpointslices", "nodes"])
    func everyRecordedWatchStreamDecodes(resource: String) async throws {
        let lines = Reply.lines("watch/scenario/\(resource).watch.ndjson")
        try await withServer(script: { _, _ in .watch(lines, end: .finish) }) { server, client in
            var seen: [String] = []
            func collect<R: KubeResource>(_: R.Type) async throws {
                let count = try await client.watch(R.self, resourceVersion: "404", timeoutSeconds: 90) {
                    seen.append(summary($0))
                }
                #expect(count == lines.count)
            }
            switch resource {
            case "pods": try await collect(Pod.self)
            case "services": try await collect(Service.self)
            case "endpointslices": try await collect(EndpointSlice.self)
            default: try await collect(Node.self)
            }
            #expect(seen == lines.map { summary(ndjsonLine: $0) })
            #expect(server.requests.first?.query["resourceVersion"] == "404")
        }
    }

    @Test func http410OnWatchRelists() async throws {
        try await withServer(script: { request, index in
            if !request.isWatch { return .fixture("lists/pods.json") }
            return index == 1
                ? .fixture("errors/list-410-resourceVersion-300-Exact-compacted.pods.json", status: 410)
                : .stream(chunks: [], end: .hang)
        }) { server, client in
            let run = InformerRun(Informer<Pod>(client: client, options: .init(backoff: fastBackoff)))
            #expect(await waitUntil { server.requests.count >= 4 })
            await run.stop()
            #expect(server.requests.prefix(4).map(\.isWatch) == [false, true, false, true])
            #expect(run.delivered.map(summary) == ["REPLACED 11 374", "REPLACED 11 374"])
        }
    }

    @Test func nodeLocalModeSendsFieldSelector() async throws {
        try await withServer(script: { request, _ in
            request.isWatch ? .stream(chunks: [], end: .hang) : .fixture("lists/pods-fieldSelector-nodeName-kapi-worker.json")
        }) { server, client in
            let run = InformerRun(Informer<Pod>(client: client, nodeName: "kapi-worker", options: .init(backoff: fastBackoff)))
            #expect(await waitUntil { server.requests.contains(where: \.isWatch) })
            await run.stop()
            #expect(server.requests.allSatisfy { $0.query["fieldSelector"] == "spec.nodeName=kapi-worker" })
            guard case .replaced(let pods, _) = run.delivered.first else {
                Issue.record("no list delivered")
                return
            }
            #expect(pods.count == 7)
            #expect(pods.allSatisfy { $0.spec.nodeName == "kapi-worker" })
        }
    }
}

@Suite struct KubeAPIErrorTests {
    private func listError(_ fixture: String, status: Int, resource: ResourceKind = .pods, namespace: String? = nil)
        async throws -> KubeAPIError
    {
        var caught: KubeAPIError?
        try await withServer(script: { _, _ in .fixture(fixture, status: status) }) { _, client in
            do {
                switch resource {
                case .endpointSlices: _ = try await client.list(EndpointSlice.self, namespace: namespace)
                default: _ = try await client.list(Pod.self, namespace: namespace)
                }
            } catch let error as KubeAPIError {
                caught = error
            }
        }
        return try #require(caught)
    }

    @Test func unauthorized401() async throws {
        let error = try await listError("errors/401-invalid-bearer-token.pods-list.json", status: 401)
        #expect(error.isUnauthorized)
        #expect(error.status?.reason == "Unauthorized")
        #expect(error.description.contains("401 Unauthorized: cannot list pods in all namespaces"))
        #expect(!error.description.contains(token))
    }

    @Test func forbidden403NamesVerbResourceAndRule() async throws {
        let error = try await listError("errors/403-viewer-token.pods-list.json", status: 403)
        #expect(error.isForbidden)
        let text = error.description
        #expect(text.contains("cannot list pods in all namespaces"))
        #expect(text.contains(#"Missing RBAC rule: apiGroups: [""], resources: ["pods"], verbs: ["list"]"#))
        #expect(text.contains("ClusterRoleBinding"))
        let serverMessage = try #require(error.status?.message)
        #expect(serverMessage.contains("cannot list resource \"pods\""))
        #expect(text.contains(serverMessage))
        #expect(!text.contains(token))

        let namespaced = try await listError(
            "errors/403-serviceaccount-token.demo-pods-list.json", status: 403, resource: .endpointSlices,
            namespace: "demo")
        #expect(namespaced.description.contains("in namespace demo"))
        #expect(
            namespaced.missingRule
                == #"apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list"]"#)
        #expect(namespaced.description.contains("endpointslices.discovery.k8s.io"))
    }

    @Test func forbiddenWatchNamesTheWatchVerb() async throws {
        try await withServer(script: { _, _ in .fixture("errors/403-viewer-token.pods-watch.json", status: 403) }) {
            _, client in
            let error = await #expect(throws: KubeAPIError.self) {
                try await client.watch(Pod.self, resourceVersion: "404") { _ in }
            }
            #expect(error?.verb == "watch")
            #expect(error?.description.contains(#"verbs: ["watch"]"#) == true)
            #expect(error?.status?.message?.contains("cannot watch resource") == true)
        }
    }

    @Test func notFoundJSONAndPlainText() async throws {
        let json = try await listError("errors/404-unknown-resource.api-v1-foos.json", status: 404)
        #expect(json.statusCode == 404)
        #expect(json.status?.message?.contains("404") == true || json.status?.reason == "NotFound")
        #expect(json.description.hasPrefix("404 Not Found: list pods"))
        let text = try await listError("errors/404-unknown-group.apis-example.com-v1-widgets.txt", status: 404)
        #expect(text.status == nil)
        #expect(text.bodyExcerpt == "404 page not found")
        #expect(text.description.contains("404 page not found"))
    }

    @Test func tokenInServerMessageIsRedacted() async throws {
        let body = Array(#"{"kind":"Status","status":"Failure","message":"token FAKE-test-token-1234567890 is bad","code":401}"#.utf8)
        try await withServer(script: { _, _ in .body(status: 401, contentType: "application/json", bytes: body, headers: []) }) {
            _, client in
            let error = await #expect(throws: KubeAPIError.self) { try await client.list(Pod.self) }
            #expect(error?.description.contains(token) == false)
            #expect(error?.description.contains("<redacted>") == true)
        }
    }

    @Test func forbiddenShowsInInformerHealth() async throws {
        try await withServer(script: { _, _ in .fixture("errors/403-viewer-token.pods-list.json", status: 403) }) {
            server, client in
            let (health, message) = await healthAfterRetries(Informer<Pod>(client: client, options: .init(backoff: fastBackoff)))
            guard let message else { return }
            #expect(message.contains(#"resources: ["pods"], verbs: ["list"]"#))
            #expect(health.lastStatusCode == 403)
            #expect(!message.contains(token))
            #expect(server.requests.allSatisfy { !$0.isWatch })
        }
    }

    @Test func gatewayTimeoutWithRetryAfterIsRetried() async throws {
        try await withServer(script: { request, index in
            if request.isWatch { return .stream(chunks: [], end: .hang) }
            return index == 0
                ? .fixture(
                    "errors/list-too-large-resourceVersion-99999999.pods.json", status: 504, headers: [("Retry-After", "1")])
                : .fixture("lists/pods.json")
        }) { server, client in
            let run = InformerRun(Informer<Pod>(client: client, options: .init(backoff: fastBackoff)))
            #expect(await waitUntil { server.requests.contains(where: \.isWatch) })
            let health = run.informer.health
            await run.stop()
            #expect(health.failures == 1)
            #expect(health.lastStatusCode == 504)
            #expect(health.state == .synced)
            #expect(run.delivered.map(summary) == ["REPLACED 11 374"])
        }
    }
}

@Suite struct KubeClientTransportTests {
    @Test func unreachableServerIsRetriedWithGrowingAttempts() async throws {
        let port = try await closedPort()
        let client = try KubeClient(
            configuration: KubeConfiguration(server: "https://127.0.0.1:\(port)", bearerToken: token),
            options: .init(connectTimeout: .milliseconds(200)))
        let run = InformerRun(Informer<Pod>(client: client, options: .init(backoff: fastBackoff)))
        var attempts: [Int] = []
        #expect(
            await waitUntil {
                if case .retrying(let attempt, _) = run.informer.health.state, attempts.last != attempt {
                    attempts.append(attempt)
                }
                return (attempts.last ?? 0) >= 4
            })
        await run.stop()
        #expect(attempts == attempts.sorted())
        #expect(run.informer.health.failures >= 4)
        #expect(run.informer.health.state == .stopped)
        #expect(run.delivered.isEmpty)
        try await client.shutdown()
    }

    @Test func clientCertificateFromKubeconfigIsPresented() async throws {
        let clientDER = try #require(
            try certificateDER(pem: Data(contentsOf: fixtures.appendingPathComponent("tls/client.crt"))))
        try await withServer(
            requireClientCertificate: true,
            configure: { config in
                let fromFile = try KubeConfiguration.kubeconfig(
                    at: fixtures.appendingPathComponent("kubeconfigs/client-cert-files.yaml").path)
                var c = fromFile
                c.server = config.server.replacingOccurrences(of: "127.0.0.1", with: "localhost")
                config = c
            },
            script: { _, _ in .fixture("lists/nodes.json") }
        ) { server, client in
            let nodes = try await client.list(Node.self)
            #expect(nodes.items.count == 3)
            let request = try #require(server.requests.first)
            #expect(request.clientCertificateDER == clientDER)
            #expect(request.authorization == nil)
        }
    }

    @Test func execPluginCertificateAndServerNameOverride() async throws {
        let clientDER = try #require(
            try certificateDER(pem: Data(contentsOf: fixtures.appendingPathComponent("tls/client.crt"))))
        try await withServer(
            requireClientCertificate: true,
            configure: { config in
                config = try fixtureKubeconfig("exec-plugin.yaml", at: config)  // verified as kubernetes.default.svc
                config.exec?.env = [.init(name: "FAKE_PLUGIN_MODE", value: "cert")]
            },
            script: { _, _ in .fixture("lists/services.json") }
        ) { server, client in
            let services = try await client.list(Service.self)
            #expect(services.items.count == 4)
            #expect(server.requests.first?.clientCertificateDER == clientDER)
        }
    }

    @Test func execPluginTokenIsSent() async throws {
        try await withServer(
            configure: { config in
                config = try fixtureKubeconfig("exec-plugin.yaml", at: config)
            },
            script: { _, _ in .fixture("lists/services.json") }
        ) { server, client in
            _ = try await client.list(Service.self)
            _ = try await client.list(Service.self)
            #expect(
                server.requests.map(\.authorization) == Array(
                    repeating: "Bearer FAKE-exec-plugin-token-0000000000000000000000", count: 2))
        }
    }

    @Test func inClusterTokenIsReReadWhenRotated() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try Data("FAKE-first-token".utf8).write(to: URL(fileURLWithPath: dir.path("token")))
        try Data(contentsOf: fixtures.appendingPathComponent("tls/ca.crt")).write(to: URL(fileURLWithPath: dir.path("ca.crt")))
        try Data("demo".utf8).write(to: URL(fileURLWithPath: dir.path("namespace")))
        try await withServer(
            configure: { config in
                let port = try #require(URLComponents(string: config.server)?.port)
                config = try KubeConfiguration.inCluster(
                    environment: ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "\(port)"],
                    serviceAccountDirectory: dir.url.path)
            },
            script: { _, _ in .fixture("lists/pods.json") }
        ) { server, client in
            _ = try await client.list(Pod.self, namespace: client.configuration.namespace)
            _ = try await client.list(Pod.self, namespace: client.configuration.namespace)
            try Data("FAKE-rotated-token-2".utf8).write(to: URL(fileURLWithPath: dir.path("token")))
            _ = try await client.list(Pod.self, namespace: client.configuration.namespace)
            #expect(
                server.requests.map(\.authorization) == [
                    "Bearer FAKE-first-token", "Bearer FAKE-first-token", "Bearer FAKE-rotated-token-2",
                ])
            #expect(server.requests.allSatisfy { $0.path == "/api/v1/namespaces/demo/pods" })
        }
    }

    @Test func insecureSkipVerifyConnectsWithoutCA() async throws {
        try await withServer(
            configure: { config in
                config = try fixtureKubeconfig("insecure-skip-tls-verify.yaml", at: config)
            },
            script: { _, _ in .fixture("lists/nodes.json") }
        ) { server, client in
            let nodes = try await client.list(Node.self)
            #expect(nodes.items.count == 3)
            #expect(server.requests.first?.authorization == "Bearer FAKE-insecure-token-00000000000000000000000000")
        }
    }

    @Test func serverCertificateIsVerified() async throws {
        // The server listens on 127.0.0.2, which its certificate does not name (its SANs are
        // localhost, kubernetes.default.svc..., 127.0.0.1, ::1): only a matching tls-server-name
        // and the fixture CA let the handshake succeed. A failed handshake is an error, and no
        // request reaches the server.
        let recordedClusterCA = Array((try? Data(contentsOf: fixtures.appendingPathComponent("serviceaccount/ca.crt"))) ?? Data())
        let cases: [(String, Bool, (inout KubeConfiguration) -> Void)] = [
            ("tls-server-name in the certificate", true, { $0.tlsServerName = "kubernetes.default.svc" }),
            ("no tls-server-name", false, { _ in }),
            ("tls-server-name not in the certificate", false, { $0.tlsServerName = "not-in-the-certificate.example" }),
            ("system roots only", false, {
                $0.tlsServerName = "kubernetes.default.svc"
                $0.certificateAuthorityPEM = nil
            }),
            ("the recorded cluster's CA", false, {
                $0.tlsServerName = "kubernetes.default.svc"
                $0.certificateAuthorityPEM = recordedClusterCA
            }),
            ("insecure-skip-tls-verify", true, {
                $0.insecureSkipTLSVerify = true
                $0.certificateAuthorityPEM = nil
            }),
        ]
        for (name, succeeds, configure) in cases {
            let server = try await TestAPIServer.start(host: "127.0.0.2") { _, _ in .fixture("lists/nodes.json") }
            var config = try server.configuration()
            configure(&config)
            let client = try KubeClient(configuration: config, options: .init(connectTimeout: .milliseconds(300)))
            let result = try? await client.list(Node.self)
            #expect((result != nil) == succeeds, "\(name)")
            #expect(server.requests.count == (succeeds ? 1 : 0), "\(name)")
            try await client.shutdown()
            await server.shutdown()
        }
    }

    @Test func missingExecPluginShowsInHealth() async throws {
        try await withServer(
            configure: { config in
                config.bearerToken = nil
                config.exec = ExecPlugin(command: "podtap-no-such-credential-plugin", installHint: "install it from example.com")
            },
            script: { _, _ in .fixture("lists/pods.json") }
        ) { server, client in
            let (health, message) = await healthAfterRetries(Informer<Pod>(client: client, options: .init(backoff: fastBackoff)))
            guard let message else { return }
            #expect(message.contains("podtap-no-such-credential-plugin"))
            #expect(message.contains("install it from example.com"))
            #expect(server.requests.isEmpty)
        }
    }

    @Test func ipv6InClusterHost() async throws {
        let server = try await TestAPIServer.start(host: "::1") { _, _ in .fixture("lists/nodes.json") }
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try Data("FAKE-v6-token".utf8).write(to: URL(fileURLWithPath: dir.path("token")))
        try Data(contentsOf: fixtures.appendingPathComponent("tls/ca.crt")).write(to: URL(fileURLWithPath: dir.path("ca.crt")))
        let config = try KubeConfiguration.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "::1", "KUBERNETES_SERVICE_PORT": "\(server.port)"],
            serviceAccountDirectory: dir.url.path)
        #expect(config.server == "https://[::1]:\(server.port)")
        #expect(config.namespace == "default")
        let client = try KubeClient(configuration: config)
        let nodes = try? await client.list(Node.self)
        try await client.shutdown()
        await server.shutdown()
        #expect(nodes?.items.count == 3)
        #expect(server.requests.first?.authorization == "Bearer FAKE-v6-token")
    }

    @Test func execCredentialsAreCachedUntilExpiry() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        // A plugin that counts its runs and saves the KUBERNETES_EXEC_INFO it was given.
        let script = """
            #!/bin/sh
            echo run >> "$(dirname "$0")/runs"
            printf '%s' "$KUBERNETES_EXEC_INFO" > "$(dirname "$0")/info.json"
            printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"FAKE-counted","expirationTimestamp":"%s"}}' "$EXPIRY"
            """
        try Data(script.utf8).write(to: URL(fileURLWithPath: dir.path("plugin.sh")))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path("plugin.sh"))
        func runs() -> Int {
            ((try? String(contentsOfFile: dir.path("runs"), encoding: .utf8)) ?? "").split(separator: "\n").count
        }
        for (expiry, expectedRuns) in [("2036-01-01T00:00:00Z", 1), ("2020-01-01T00:00:00Z", 3)] {
            try? FileManager.default.removeItem(atPath: dir.path("runs"))
            let config = KubeConfiguration(
                server: "https://10.96.0.1:443", certificateAuthorityPEM: Array("PEM".utf8),
                exec: ExecPlugin(
                    command: "./plugin.sh", env: [.init(name: "EXPIRY", value: expiry)], provideClusterInfo: true,
                    baseDirectory: dir.url.path))
            let source = CredentialSource(configuration: config)
            for _ in 0..<3 {
                #expect(try await source.current().bearerToken == "FAKE-counted")
            }
            #expect(runs() == expectedRuns)
        }
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path("info.json"))))
        let cluster = ((info as? [String: Any])?["spec"] as? [String: Any])?["cluster"] as? [String: Any]
        #expect(cluster?["server"] as? String == "https://10.96.0.1:443")
        #expect(cluster?["certificate-authority-data"] as? String == Data("PEM".utf8).base64EncodedString())
    }
}
