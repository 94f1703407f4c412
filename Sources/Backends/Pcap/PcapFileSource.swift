// Capture files read by libpcap: the second file path beside CaptureCore's pure-Swift reader.
public import CaptureCore
internal import CPodTapPcap

/// A pcap (or pcapng, as far as libpcap reads it) file read through libpcap, as a
/// ``CaptureSource``. Timestamps are requested in nanoseconds
/// (`pcap_open_offline_with_tstamp_precision`), so microsecond and nanosecond files both
/// deliver exact ``Timestamp``s, the same records as ``CaptureFileReader``.
///
/// ``CaptureFileReader`` is the primary path (no C, memory-mapped, every pcapng block type);
/// this one exists to cross-check it and for formats only libpcap knows.
public struct PcapFileSource: ~Copyable, CaptureSource {
    let handle: PcapHandle
    /// The file's path.
    public let path: String
    /// The file's link-layer header type (libpcap reports the first interface's for pcapng).
    public let linkType: LinkType
    /// The snap length in the file header.
    public let snapLength: Int
    /// Packets per ``poll(timeoutMilliseconds:_:)``.
    public let batchSize: Int32
    var fileStatistics = CaptureStatistics()

    /// Opens the file.
    /// - Throws: ``CaptureSourceError/Code/file`` with libpcap's reason (missing file, not a
    ///   capture file, unsupported version).
    public init(path: String, batchSize: Int = 256) throws(CaptureSourceError) {
        let (opened, message) = unsafe withPcapErrorBuffer { errorBuffer in
            unsafe pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), errorBuffer)
        }
        guard let opened = unsafe opened else {
            throw CaptureSourceError(.file, operation: "pcap_open_offline(\(path))", message: message)
        }
        handle = unsafe PcapHandle(opened)
        self.path = path
        linkType = handle.linkType
        snapLength = Int(unsafe pcap_snapshot(opened))
        self.batchSize = Int32(clamping: max(1, batchSize))
    }

    /// Delivers up to ``batchSize`` packets; a file never waits. 0 at the end of the file.
    /// - Throws: ``CaptureSourceError/Code/file`` at a truncated or damaged record, after
    ///   delivering every packet before it.
    public mutating func poll(
        timeoutMilliseconds: Int32, _ body: (borrowing PacketRecord) -> Void
    ) throws(CaptureSourceError) -> Int {
        let n = handle.dispatch(count: batchSize, linkType: linkType, nanosecondsPerUnit: 1, interfaceIndex: 0, body)
        guard n >= 0 else {
            throw CaptureSourceError(.file, operation: "pcap_dispatch(\(path))", message: handle.lastError)
        }
        fileStatistics.delivered &+= UInt64(n)
        fileStatistics.received &+= UInt64(n)
        if n > 0 { fileStatistics.batches &+= 1 }
        return Int(n)
    }

    public var statistics: CaptureStatistics { fileStatistics }
}
