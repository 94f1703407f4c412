// List-then-watch for one resource kind, resuming from the last resourceVersion after every
// disconnect, relisting on 410, backing off on failures, and reporting its health.
public import K8sMeta
import Foundation
import Synchronization

/// Exponential backoff with jitter: `initial · multiplier^(attempt-1)`, capped at `maximum`,
/// then scaled by a random factor in `1 ± jitter`.
public struct Backoff: Sendable, Hashable {
    public var initial: Duration
    public var maximum: Duration
    public var multiplier: Double
    /// 0 ... 1.
    public var jitter: Double

    /// Defaults: 0.5 s doubling to 30 s, ±20 % jitter.
    public init(
        initial: Duration = .milliseconds(500), maximum: Duration = .seconds(30), multiplier: Double = 2,
        jitter: Double = 0.2
    ) {
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The wait before retry `attempt` (1-based). A server's `Retry-After` raises it, up to `maximum`.
    public func delay(attempt: Int, retryAfterSeconds: Int? = nil) -> Duration {
        let base = initial.seconds * pow(multiplier, Double(max(0, attempt - 1)))
        var seconds = min(maximum.seconds, base)
        if let retryAfterSeconds { seconds = max(seconds, min(maximum.seconds, Double(retryAfterSeconds))) }
        let j = min(max(jitter, 0), 1)
        seconds *= Double.random(in: (1 - j)...(1 + j))
        return .nanoseconds(Int64(seconds * 1e9))
    }
}

extension Duration {
    fileprivate var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// What an ``Informer`` is doing, for health endpoints and logs.
public struct InformerHealth: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case idle
        /// Listing (initially or after a 410).
        case syncing
        /// Listed and watching.
        case synced
        /// The last request failed; the next try is `attempt` (1 = first retry). `error` is
        /// the actionable message (a 403 names the missing RBAC rule); it never holds a token.
        case retrying(attempt: Int, error: String)
        case stopped
    }
    public var state: State = .idle
    /// The last resourceVersion seen (list, event or bookmark).
    public var resourceVersion: String?
    /// Completed LISTs (the initial one and every relist).
    public var lists = 0
    /// WATCH requests sent.
    public var watches = 0
    /// Failed requests since start.
    public var failures = 0
    /// HTTP status of the last ``KubeAPIError``, if the last failure was one.
    public var lastStatusCode: Int?

    public init() {}
}

/// Keeps one resource kind in sync: a paginated LIST delivered as `.replaced`, then a WATCH from
/// the list's resourceVersion, resumed from the last seen resourceVersion whenever the server ends
/// it or the connection drops. A 410 (HTTP or in-stream ERROR event) relists; other failures back
/// off exponentially with jitter and show in ``health``; nothing crashes.
///
/// Delivery: ``events``, an `AsyncStream` (unbounded buffer) with exactly one consumer. Events come
/// in server order: `.replaced(all, resourceVersion:)` after each (re)list, then `.added`,
/// `.modified`, `.deleted`, `.bookmark` from the watch. Run it with ``run()`` in a task; cancel
/// that task to stop (``events`` then finishes).
public final class Informer<R: KubeResource>: Sendable {
    public struct Options: Sendable {
        /// nil: all namespaces.
        public var namespace: String?
        /// e.g. `spec.nodeName=node-1` for node-local pods.
        public var fieldSelector: String?
        /// LIST page size (`limit`).
        public var pageSize: Int
        /// Asked of the server per watch; it ends the watch after this and the informer re-watches.
        public var watchTimeoutSeconds: Int
        public var backoff: Backoff
        public init(
            namespace: String? = nil, fieldSelector: String? = nil, pageSize: Int = 500,
            watchTimeoutSeconds: Int = 300, backoff: Backoff = Backoff()
        ) {
            self.namespace = namespace
            self.fieldSelector = fieldSelector
            self.pageSize = pageSize
            self.watchTimeoutSeconds = watchTimeoutSeconds
            self.backoff = backoff
        }
    }

    public let client: KubeClient
    public let options: Options
    /// The informer's output; see the type's documentation.
    public let events: AsyncStream<WatchEvent<R>>
    private let continuation: AsyncStream<WatchEvent<R>>.Continuation
    private let healthState = Mutex(InformerHealth())
    private let started = Atomic<Bool>(false)

    /// An informer for `R` that has not started; call ``run()``.
    public init(client: KubeClient, options: Options = Options()) {
        self.client = client
        self.options = options
        (events, continuation) = AsyncStream.makeStream(of: WatchEvent<R>.self, bufferingPolicy: .unbounded)
    }

    /// A snapshot of the current health.
    public var health: InformerHealth { healthState.withLock { $0 } }

    /// Lists and watches until the calling task is cancelled. Call once.
    public func run() async {
        guard !started.exchange(true, ordering: .relaxed) else {
            preconditionFailure("Informer.run() called twice")
        }
        defer {
            healthState.withLock { $0.state = .stopped }
            continuation.finish()
        }
        var resourceVersion: String?
        var attempt = 0
        // 410s in a row without a watch event in between: paced after the first.
        var consecutiveGone = 0
        while !Task.isCancelled {
            do {
                if resourceVersion == nil {
                    healthState.withLock { $0.state = .syncing }
                    let (objects, listRV) = try await listAll()
                    resourceVersion = listRV
                    attempt = 0
                    healthState.withLock {
                        $0.lists += 1
                        $0.resourceVersion = listRV
                        $0.state = .synced
                    }
                    continuation.yield(.replaced(objects, resourceVersion: listRV))
                }
                let started = ContinuousClock.now
                healthState.withLock { $0.watches += 1 }
                let delivered = try await client.watch(
                    R.self, namespace: options.namespace, fieldSelector: options.fieldSelector,
                    resourceVersion: resourceVersion ?? "", timeoutSeconds: options.watchTimeoutSeconds
                ) { event in
                    let rv: String?
                    switch event {
                    case .added(let o), .modified(let o), .deleted(let o): rv = o.metadata.resourceVersion
                    case .bookmark(let v): rv = v
                    case .replaced(_, let v): rv = v
                    }
                    if let rv, !rv.isEmpty { resourceVersion = rv }
                    consecutiveGone = 0
                    if attempt != 0 {
                        attempt = 0
                        healthState.withLock { $0.state = .synced }
                    }
                    healthState.withLock { $0.resourceVersion = resourceVersion }
                    continuation.yield(event)
                }
                // The server ended the watch (timeoutSeconds): resume from the last RV. A watch that
                // ends at once with nothing in it is paced so a misbehaving server cannot spin us.
                attempt = 0
                healthState.withLock { $0.state = .synced }
                if delivered == 0 && ContinuousClock.now - started < .seconds(1) {
                    try await Task.sleep(for: options.backoff.delay(attempt: 1))
                }
            } catch let error as KubeAPIError where error.isGone {
                // Too old: list again from scratch (never re-watch with the same RV).
                resourceVersion = nil
                consecutiveGone += 1
                healthState.withLock {
                    $0.failures += 1
                    $0.lastStatusCode = 410
                }
                if consecutiveGone > 1 {
                    do { try await Task.sleep(for: options.backoff.delay(attempt: consecutiveGone - 1)) } catch { break }
                }
            } catch {
                if Task.isCancelled || error is CancellationError { break }
                attempt += 1
                let message = (error as? KubeAPIError)?.description ?? String(describing: error)
                let statusCode = (error as? KubeAPIError)?.statusCode
                healthState.withLock {
                    $0.failures += 1
                    $0.lastStatusCode = statusCode
                    $0.state = .retrying(attempt: attempt, error: message)
                }
                let delay = options.backoff.delay(
                    attempt: attempt, retryAfterSeconds: (error as? KubeAPIError)?.retryAfterSeconds)
                do { try await Task.sleep(for: delay) } catch { break }
            }
        }
    }

    /// Every page of a LIST; a 410 on a `continue` token (compacted) restarts from the first page.
    private func listAll() async throws -> ([R], String) {
        var restarts = 0
        restart: while true {
            var items: [R] = []
            var token: String?
            var listRV = ""
            repeat {
                do {
                    let page = try await client.list(
                        R.self, namespace: options.namespace, fieldSelector: options.fieldSelector,
                        limit: options.pageSize, continue: token)
                    if token == nil { listRV = page.resourceVersion }
                    items += page.items
                    token = page.continueToken
                } catch let error as KubeAPIError where error.isGone && token != nil && restarts < 5 {
                    restarts += 1
                    continue restart
                }
            } while token != nil
            return (items, listRV)
        }
    }
}

extension Informer where R == Pod {
    /// Node-local mode: only the pods scheduled on `nodeName` (`fieldSelector=spec.nodeName=…`).
    public convenience init(client: KubeClient, nodeName: String, options: Options = Options()) {
        var options = options
        options.fieldSelector = "spec.nodeName=\(nodeName)"
        self.init(client: client, options: options)
    }
}
