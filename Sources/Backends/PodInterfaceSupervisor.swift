public import CaptureCore
internal import Synchronization

/// Keeps one running "source" (a capture thread, say) per pod interface that is up, fed by an
/// ``InterfaceWatcher``.
///
/// - A pod interface that is added or comes up is started with `start`.
/// - One that goes down, is removed, or stops being selected is stopped with `stop`.
/// - One that is down is skipped, and the skip reported with its reason.
/// - A `start` that throws is reported and retried on the interface's next event showing it
///   up (it going down and up again, say); the supervisor and the watcher carry on.
///
/// Events are handled one at a time, start and stop hooks included, under a lock: a hook must
/// not call back into the supervisor. Reports are delivered after the lock is released.
///
/// ```swift
/// let supervisor = PodInterfaceSupervisor(
///     start: { interface in try AFPacketCapture.start(on: interface.index) },
///     stop: { capture in capture.stop() },
///     report: { print($0) })
/// let watcher = InterfaceWatcher(handler: supervisor.handle)
/// ```
public final class PodInterfaceSupervisor<Handle>: @unchecked Sendable {
    /// What the supervisor did about a pod interface.
    public enum Report: Sendable, CustomStringConvertible {
        case started(PodInterface)
        case stopped(PodInterface, reason: StopReason)
        /// Not started, and why ("the interface is down").
        case skipped(PodInterface, reason: String)
        /// `start` threw; retried on the next event showing the interface up.
        case startFailed(PodInterface, error: any Error)
        /// The watcher reported a problem (it keeps running).
        case watcherProblem(CaptureSourceError)

        public var description: String {
            switch self {
            case .started(let i): "started \(i)"
            case .stopped(let i, let reason): "stopped \(i.name): \(reason.rawValue)"
            case .skipped(let i, let reason): "skipped \(i.name): \(reason)"
            case .startFailed(let i, let error): "could not start \(i.name): \(error)"
            case .watcherProblem(let error): "interface watcher: \(error)"
            }
        }
    }

    public enum StopReason: String, Sendable {
        /// The interface went down.
        case down = "the interface went down"
        /// The interface was deleted (the pod went away) or is no longer selected.
        case removed = "the interface was removed"
        /// ``PodInterfaceSupervisor/stopAll()``.
        case shutdown = "shutting down"
    }

    private struct Entry {
        var interface: PodInterface
        var handle: Handle?
        /// A skip was reported for the current down spell; not repeated for every event.
        var skipReported = false
    }

    private let startHook: @Sendable (PodInterface) throws -> Handle
    private let stopHook: @Sendable (Handle) -> Void
    private let reportHook: @Sendable (Report) -> Void
    private let entries = Mutex<[Int32: Entry]>([:])

    /// - Parameters:
    ///   - start: starts a source on a pod interface that is up; throwing reports the failure.
    ///   - stop: stops what `start` returned.
    ///   - report: told of every start, stop, skip and failure, outside the lock.
    public init(
        start: @escaping @Sendable (PodInterface) throws -> Handle,
        stop: @escaping @Sendable (Handle) -> Void,
        report: @escaping @Sendable (Report) -> Void = { _ in }
    ) {
        startHook = start
        stopHook = stop
        reportHook = report
    }

    deinit { stopAll() }

    /// Applies one watcher event; pass this as the watcher's handler.
    public func handle(_ event: InterfaceWatcher.Event) {
        let reports = entries.withLock { entries -> [Report] in
            var reports: [Report] = []
            switch event {
            case .added(let interface), .changed(let interface, _):
                var entry = entries[interface.index] ?? Entry(interface: interface)
                entry.interface = interface
                if interface.state == .up {
                    entry.skipReported = false
                    if entry.handle == nil {
                        do {
                            entry.handle = try startHook(interface)
                            reports.append(.started(interface))
                        } catch {
                            reports.append(.startFailed(interface, error: error))
                        }
                    }
                } else {
                    if let handle = entry.handle {
                        stopHook(handle)
                        entry.handle = nil
                        reports.append(.stopped(interface, reason: .down))
                    }
                    if !entry.skipReported {
                        entry.skipReported = true
                        reports.append(.skipped(interface, reason: "the interface is down (IFF_UP clear); it starts when it comes up"))
                    }
                }
                entries[interface.index] = entry
            case .removed(let interface):
                if let entry = entries.removeValue(forKey: interface.index), let handle = entry.handle {
                    stopHook(handle)
                    reports.append(.stopped(interface, reason: .removed))
                }
            case .problem(let error):
                reports.append(.watcherProblem(error))
            }
            return reports
        }
        for report in reports { reportHook(report) }
    }

    /// Stops every running source; interfaces are forgotten. Stop the watcher first.
    public func stopAll() {
        let reports = entries.withLock { entries -> [Report] in
            var reports: [Report] = []
            for index in entries.keys.sorted() {
                guard let handle = entries[index]?.handle, let interface = entries[index]?.interface else { continue }
                stopHook(handle)
                reports.append(.stopped(interface, reason: .shutdown))
            }
            entries.removeAll()
            return reports
        }
        for report in reports { reportHook(report) }
    }

    /// The pod interfaces with a running source, by ifindex.
    public var runningInterfaces: [PodInterface] {
        entries.withLock { entries in
            entries.keys.sorted().compactMap { entries[$0]?.handle == nil ? nil : entries[$0]?.interface }
        }
    }

    /// Every pod interface the supervisor knows, running or not, by ifindex.
    public var knownInterfaces: [PodInterface] {
        entries.withLock { entries in entries.keys.sorted().compactMap { entries[$0]?.interface } }
    }
}
