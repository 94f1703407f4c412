import CaptureCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT (Ctrl-C) and SIGTERM end the input, not the run: podtap-flows stops reading, prints
/// the flows of every packet it read, and then dies of the signal, so that a shell loop or a
/// parent process sees what stopped it. A second signal kills at once.
///
/// `tcpdump -w - | podtap-flows -` stops this way: both get the signal, tcpdump writes its
/// last buffer and closes the pipe. A stream is therefore read on after the signal while
/// bytes keep coming, until it ends, stays silent for ``silence`` seconds, or
/// ``mostAfterSignal`` seconds passed.
enum Interruption {
    /// The signal received, 0 before any.
    static let received = Atomic<Int32>(0)
    /// After the signal, a stream that sends nothing for this long has ended.
    static let silence = 0.5
    /// After the signal, a stream is read for at most this long.
    static let mostAfterSignal = 2.0

    static var signal: Int32 { received.load(ordering: .relaxed) }

    /// Catches SIGINT and SIGTERM. Without `SA_RESTART`, a read blocked on a silent pipe and
    /// the open of a FIFO nobody writes return `EINTR`; `SA_RESETHAND` lets a second signal kill.
    static func install() {
        _ = signal  // initialised before a handler can touch it
        for number in [SIGINT, SIGTERM] {
            var action = sigaction()
            unsafe action.__sigaction_handler.sa_handler = { number in
                Interruption.received.store(number, ordering: .relaxed)
            }
            action.sa_flags = Int32(truncatingIfNeeded: SA_RESETHAND)
            _ = unsafe sigemptyset(&action.sa_mask)
            _ = unsafe sigaction(number, &action, nil)
        }
    }

    /// After the output is written: dies of the signal received, if any.
    static func endBySignal() {
        let number = signal
        guard number != 0 else { return }
        _ = Glibc.signal(number, SIG_DFL)
        _ = raise(number)
    }

    /// `read(2)` on a stream for `CaptureStreamReader`, which a signal ends: before the
    /// signal it waits for bytes in slices of 250 ms (so a signal that lands just before a
    /// blocking read is not missed); after it, it reads while bytes come (see the type).
    final class Stream {
        let fd: Int32
        /// Bytes read so far.
        private(set) var bytes = 0
        /// The signal, not the writer, ended the stream.
        private(set) var endedBySignal = false
        private var stopBy = Double.infinity

        init(_ fd: Int32) { self.fd = fd }

        /// Whether `error` is only the mark of the signal's stop: a record, or the file
        /// header, cut where the stream was ended.
        func isCutBySignal(_ error: CaptureFileError) -> Bool {
            endedBySignal && (error.code == .truncated || (error.code == .notACaptureFile && bytes < 24))
        }

        func read(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
            while true {
                var wait = 250
                if signal != 0 {
                    let now = monotonicSeconds()
                    if stopBy == .infinity { stopBy = now + mostAfterSignal }
                    let left = min(silence, stopBy - now)
                    guard left > 0 else { return end() }
                    wait = Int(left * 1000) + 1
                }
                var waiter = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = unsafe poll(&waiter, 1, Int32(wait))
                if ready == 0 {
                    if signal != 0 { return end() }  // silent since the signal: the end
                    continue
                }
                if ready < 0 && errno != EINTR { return -Int(errno) }
                if ready < 0 { continue }
                let n = unsafe Glibc.read(fd, buffer.baseAddress, buffer.count)
                if n >= 0 {
                    bytes += n
                    return n
                }
                if errno == EINTR || errno == EAGAIN { continue }
                return -Int(errno)
            }
        }

        private func end() -> Int {
            endedBySignal = true
            return 0
        }
    }
}
